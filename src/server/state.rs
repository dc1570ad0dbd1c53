//! `AppState`: what every handler and server function shares (the pool,
//! the configuration, the Leptos options, the live hub and its watchers),
//! cloned cheaply into each request.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use super::config::Config;

/// Shared by every handler and server function.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub leptos_options: LeptosOptions,
    /// Signals from other processes (LISTEN/NOTIFY).
    pub hub: super::live::Hub,
    /// Live views of executions (SSE), one watcher per watched execution.
    pub watchers: Arc<super::live::views::Watchers>,
    /// Sends invitations by email when `MINO_SMTP_URL` is set.
    pub mailer: Option<Arc<super::mail::Mailer>>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.leptos_options.clone()
    }
}
