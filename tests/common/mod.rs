//! Serves the real router on a random port over a fresh database (from
//! `#[sqlx::test]`) and gives tests cookie-keeping HTTP clients.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use mino::server::{config::Config, startup};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

pub const PASSWORD: &str = "correct horse battery";
/// The key every app and `mino` process of the tests seals secrets with.
pub const SECRET_KEY: &str = "6d696e6f2d746573742d6b65792d6d696e6f2d746573742d6b65792d31323334";

pub struct TestApp {
    pub base: String,
    pub db: PgPool,
}

pub async fn spawn_app(db: PgPool) -> TestApp {
    spawn_app_at(db, None).await
}

/// As [`spawn_app`], but telling the app it is reached at `public_url`
/// (e.g. an https address behind a proxy).
pub async fn spawn_app_at(db: PgPool, public_url: Option<&str>) -> TestApp {
    spawn_app_with(db, public_url, |_| {}).await
}

/// As [`spawn_app_at`], with the configuration adjusted by `tweak`.
pub async fn spawn_app_with(
    db: PgPool,
    public_url: Option<&str>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    startup::migrate(&db).await.expect("migrations");
    let leptos_options = leptos::config::get_configuration(Some("Cargo.toml"))
        .expect("leptos config")
        .leptos_options;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config {
        data_dir: std::env::temp_dir().join("mino-test"),
        database_url: None,
        public_url: public_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("http://{addr}")),
        log_json: false,
        trust_proxy: false,
        // The demo shop the tests fetch is on 127.0.0.1.
        allow_private_targets: true,
        worker_slots: 0,
        lease_secs: 30,
        // Tests sign in as a few people and call a lot; the limit itself
        // is tested with a small one.
        user_requests_per_minute: 1_000_000,
        webhook_retry_base: std::time::Duration::from_millis(200),
        smtp_url: None,
        smtp_from: "Mino <mino@example.com>".into(),
        secret_key: Some(mino::server::secrets::SecretKey::parse(SECRET_KEY).unwrap()),
    };
    tweak(&mut config);
    // Every app of the test process seals with the same key.
    mino::server::secrets::prepare(&db, config.secret_key.as_ref(), &config.data_dir)
        .await
        .expect("the secret key");
    // The app gets its own pool to the test database, like production (an
    // acquire timeout, no shared parent). `#[sqlx::test]` pools draw on one
    // process-wide parent pool without a timeout; the served app's
    // connections outlive the test's runtime, and a heavy test could wait
    // forever for that parent.
    let app_pool = startup::connect((*db.connect_options()).clone())
        .await
        .expect("app pool");
    // Hears NOTIFYs for live views until the test's database closes.
    let (stop_hub, hub_stopped) = tokio::sync::watch::channel(false);
    let hub = mino::server::live::Hub::start(app_pool.clone(), hub_stopped);
    // Close it when the harness closes the test pool, before it drops the
    // database (which would otherwise wait for these connections).
    let closing = db.close_event();
    let to_close = app_pool.clone();
    tokio::spawn(async move {
        closing.await;
        let _ = stop_hub.send(true);
        to_close.close().await;
    });
    let app = startup::router(app_pool.clone(), Arc::new(config), leptos_options, hub);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestApp {
        base: format!("http://{addr}"),
        db,
    }
}

/// A browser-like client: keeps cookies, does not follow redirects, and
/// gives up (failing the test) rather than wait forever.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Res {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    /// The message for `field` in a validation error's details.
    pub fn field(&self, field: &str) -> Option<String> {
        self.body["details"]["fields"]
            .as_array()?
            .iter()
            .find(|f| f["field"] == field)
            .and_then(|f| f["message"].as_str().map(str::to_string))
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(
        &self,
        c: &Client,
        method: Method,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Res {
        let mut req = c.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = bearer {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Res {
            status,
            headers,
            body,
        }
    }

    /// A JSON request whose answer is read raw (a file, a stream).
    pub async fn call_raw(&self, c: &Client, method: Method, path: &str) -> reqwest::Response {
        c.request(method, self.url(path))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("request")
    }

    /// Opens a page the way a browser navigation does (`Accept: text/html`,
    /// which is what makes the server answer redirects with 302).
    pub async fn open(&self, c: &Client, path: &str) -> reqwest::Response {
        c.get(self.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, c: &Client, path: &str) -> Res {
        self.call(c, Method::GET, path, None, None).await
    }
    pub async fn post(&self, c: &Client, path: &str, body: Value) -> Res {
        self.call(c, Method::POST, path, Some(body), None).await
    }
    pub async fn patch(&self, c: &Client, path: &str, body: Value) -> Res {
        self.call(c, Method::PATCH, path, Some(body), None).await
    }
    pub async fn delete(&self, c: &Client, path: &str) -> Res {
        self.call(c, Method::DELETE, path, None, None).await
    }
    pub async fn with_key(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: &str,
    ) -> Res {
        self.call(&client(), method, path, body, Some(key)).await
    }

    /// Signs up a new user on a fresh client and returns (client, user id).
    pub async fn user(&self, email: &str, name: &str) -> (Client, String) {
        let c = client();
        let r = self
            .post(
                &c,
                "/api/v1/auth/signup",
                json!({"email": email, "password": PASSWORD, "name": name}),
            )
            .await;
        assert_eq!(r.status, 201, "signup {email}: {:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        (c, id)
    }

    /// Creates an organization as `c` and returns its id.
    pub async fn org(&self, c: &Client, name: &str) -> String {
        let r = self.post(c, "/api/v1/orgs", json!({"name": name})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Creates an invitation as `c`.
    pub async fn invite(&self, c: &Client, org: &str, email: &str, role: &str) -> Res {
        self.post(
            c,
            &format!("/api/v1/orgs/{org}/invitations"),
            json!({"email": email, "role": role}),
        )
        .await
    }

    /// Invites `email` as `role` into `org` as `admin`, then accepts as `invitee`.
    pub async fn join(&self, admin: &Client, org: &str, invitee: &Client, email: &str, role: &str) {
        let r = self
            .post(
                admin,
                &format!("/api/v1/orgs/{org}/invitations"),
                json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let token = r.body["token"].as_str().unwrap().to_string();
        let r = self
            .post(
                invitee,
                &format!("/api/v1/invitations/{token}/accept"),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    /// Creates an API key with `scopes` and returns its secret.
    pub async fn key(&self, admin: &Client, org: &str, scopes: &[&str]) -> String {
        let r = self
            .post(
                admin,
                &format!("/api/v1/orgs/{org}/api-keys"),
                json!({"name": "test key", "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["secret"].as_str().unwrap().to_string()
    }
}

impl TestApp {
    /// Creates a project in `org` as `c` and returns its id.
    pub async fn project(&self, c: &Client, org: &str, name: &str) -> String {
        let r = self
            .post(
                c,
                &format!("/api/v1/orgs/{org}/projects"),
                json!({"name": name, "instructions": "Find the price."}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Posts `body` as-is to `path` with `content_type`, as `c` or a key.
    pub async fn send_bytes(
        &self,
        c: &Client,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        bearer: Option<&str>,
    ) -> Res {
        let mut req = c
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = bearer {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        Res {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    /// Uploads `csv` as a new batch of `project` (`query` without `?`).
    pub async fn upload(&self, c: &Client, project: &str, csv: &str, query: &str) -> Res {
        self.send_bytes(
            c,
            &format!("/api/v1/projects/{project}/batches?{query}"),
            csv.as_bytes().to_vec(),
            "text/csv",
            None,
        )
        .await
    }

    /// Rows stored for the organization's batches, straight from the
    /// database.
    pub async fn stored_rows(&self) -> (i64, i64) {
        let batches: i64 = sqlx::query_scalar("select count(*) from batches")
            .fetch_one(&self.db)
            .await
            .unwrap();
        let rows: i64 = sqlx::query_scalar("select count(*) from batch_rows")
            .fetch_one(&self.db)
            .await
            .unwrap();
        (batches, rows)
    }
}

/// Eight in-process workers on the app's database; they stop when the
/// returned sender says so (or is dropped).
pub fn spawn_workers(app: &TestApp) -> tokio::sync::watch::Sender<bool> {
    spawn_workers_with(app, true)
}

/// As [`spawn_workers`]; with `allow_private` false the workers reach only
/// the public internet and the app's own demo shop, as a server does by
/// default.
pub fn spawn_workers_with(app: &TestApp, allow_private: bool) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    mino::server::executor::spawn(
        app.db.clone(),
        mino::server::executor::Settings {
            slots: 8,
            allow_private_targets: allow_private,
            demo_origin: mino::server::agents::fetch::DemoOrigin::of(&app.base),
            worker_id: "w".into(),
            lease: mino::server::executor::LEASE,
        },
        mino::server::live::Hub::start(app.db.clone(), stopped.clone()),
        stopped,
    );
    stop
}

/// A test run of the first `rows` demo rows, retries off, run to its end
/// by in-process workers: (owner's client, execution id).
pub async fn finished_demo_run(app: &TestApp, rows: i32) -> (reqwest::Client, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let stop = spawn_workers(app);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": rows, "max_retries": 0}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let start = std::time::Instant::now();
    while app.get(&c, &format!("/api/v1/executions/{id}")).await.body["state"] != "completed" {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the run did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    (c, id)
}

/// A shop of demo product pages (`/p/{n}`) that counts the requests it
/// answers: (base URL, the count).
pub async fn counting_shop() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::extract::{Path, State};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/p/{n}",
            axum::routing::get(
                |State(hits): State<Arc<AtomicUsize>>, Path(n): Path<u32>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::response::Html(mino::server::demo::pages_html(
                        &mino::server::demo::product(n),
                    ))
                },
            ),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}
