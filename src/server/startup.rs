//! Assembles the application: database, sessions, the router with the UI,
//! server functions, REST API and health checks; then serves it until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use super::auth::session::IDLE_HOURS;
use super::config::Config;
use super::state::AppState;
use crate::app::{shell, App};

/// The longest any request may take to produce its response head.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a CSV upload may take to be answered.
pub const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn connect(options: PgConnectOptions) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(std::time::Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: a round trip
        // before each query, which was a fifth of a run page's CPU and of
        // the executor's claims and writes (issue 22). A connection that
        // broke meanwhile fails its query instead, and sqlx replaces it; an
        // idle one is recycled after a while.
        .test_before_acquire(false)
        .idle_timeout(std::time::Duration::from_secs(5 * 60))
        .connect_with(options)
        .await?)
}

/// Applies our migrations and the session store's table.
pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(db).await?;
    PostgresStore::new(db.clone()).migrate().await?;
    Ok(())
}

/// The whole HTTP application over an already-migrated database. Tests
/// serve exactly this.
pub fn router(
    db: PgPool,
    config: Arc<Config>,
    leptos_options: LeptosOptions,
    hub: super::live::Hub,
) -> Router {
    let leptos_options = hashed_names_checked(leptos_options);
    let state = AppState {
        db: db.clone(),
        config: config.clone(),
        leptos_options: leptos_options.clone(),
        watchers: super::live::views::Watchers::new(db.clone(), hub.clone()),
        hub,
        // Checked by Config at start, so this only fails in hand-made configs.
        mailer: config.smtp_url.as_deref().and_then(|url| {
            super::mail::Mailer::new(url, &config.smtp_from)
                .map_err(|e| tracing::error!(error = %e, "invitations will not be emailed"))
                .ok()
                .map(Arc::new)
        }),
    };

    let store = PostgresStore::new(db);
    let cookie_name = if config.https() {
        "__Host-mino_session"
    } else {
        "mino_session"
    };
    let sessions = SessionManagerLayer::new(store)
        .with_name(cookie_name)
        .with_secure(config.https())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(IDLE_HOURS)));

    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_context(super::rpc::RequestUser::default());
        }
    };

    let request_id = HeaderName::from_static("x-request-id");
    // Server functions are routed by leptos_routes_with_context, which
    // registers each one's path (under /rpc/) with the same context.
    Router::new()
        .nest(
            "/api/v1",
            crate::rest::router().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                super::ratelimit::limit,
            )),
        )
        // The built-in demo shop, for trying agents with no internet.
        .nest("/demo", super::demo::router())
        // The browser bundle, compressed (see `assets`).
        .nest_service(
            &format!("/{}", leptos_options.site_pkg_dir),
            super::assets::router::<()>(
                std::path::Path::new(leptos_options.site_root.as_ref())
                    .join(leptos_options.site_pkg_dir.as_ref()),
            ),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(super::metrics::scrape))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(axum::middleware::from_fn(super::rpc::error_status))
        // The address and user agent that audit entries record.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::http::capture_request,
        ))
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn(super::csrf::guard))
        .layer(sessions)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            // One line per request at INFO (status and latency), inside a
            // span carrying the request id that is also sent back to the
            // client in x-request-id.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Millis),
                ),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // Security headers on everything, refusals and errors included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::security::headers,
        ))
        // Outermost, so every request is counted and timed, refusals too.
        .layer(axum::middleware::from_fn(super::metrics::track))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match super::db::ping(&state.db).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish.
pub async fn serve(app: Router, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e}. Set LEPTOS_SITE_ADDR to a free address.")
    })?;
    tracing::info!("Mino is listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Removes expired sessions from the store every hour.
pub fn spawn_session_cleanup(db: PgPool) {
    use tower_sessions::ExpiredDeletion;
    let store = PostgresStore::new(db);
    tokio::spawn(async move {
        let _ = store
            .continuously_delete_expired(tokio::time::Duration::from_secs(3600))
            .await;
    });
}

/// No request may hang: whatever is stuck (a lock, a render that never
/// resolves) answers 504 after [`REQUEST_TIMEOUT`]. CSV uploads get
/// [`UPLOAD_TIMEOUT`]: a 200 MB file on a slow link takes minutes. This
/// bounds the time to the response head, so streamed bodies (server-sent
/// events, exports) are not cut.
async fn deadline(
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    let is_upload = req.method() == axum::http::Method::POST
        && path.starts_with("/api/v1/projects/")
        && (path.ends_with("/batches") || path.ends_with("/batches/preview"));
    let limit = if is_upload {
        UPLOAD_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => StatusCode::GATEWAY_TIMEOUT.into_response(),
    }
}

/// With `hash-files`, the page names the bundle files listed in `hash.txt`
/// beside the running binary (cargo-leptos writes it there). A binary
/// without one (the test binaries, a binary copied elsewhere, one built by
/// plain `cargo build`) would fail every page; it names the unhashed files
/// instead, and says so, since a hashed build has none of those.
fn hashed_names_checked(mut options: LeptosOptions) -> LeptosOptions {
    if options.hash_files {
        let beside_binary = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join(options.hash_file.as_ref())));
        if !beside_binary.as_ref().is_some_and(|p| p.exists()) {
            tracing::warn!(
                expected = ?beside_binary,
                "no hash.txt beside this binary: pages name unhashed bundle files, so the \
                 browser code loads only from a site built without hash-files; run the binary \
                 where `cargo leptos build` left it, or copy hash.txt along"
            );
            options.hash_files = false;
        }
    }
    options
}
