//! Live signals between processes through Postgres LISTEN/NOTIFY. Each
//! process opens one listening connection ([`Hub::start`]) and fans what it
//! hears out in-process: workers hear control changes (pause, stop…) and
//! "work is waiting"; live views (SSE) hear that an execution changed.
//! Payloads carry ids and states only; readers take the facts from the
//! database. A lost connection can lose notifications, so after a
//! reconnect the hub sends [`Control::Resync`] and everyone re-reads.

pub mod views;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgExecutor, PgPool};
use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;

/// An execution's state changed: payload `<id> <state>`.
pub const CONTROL: &str = "mino_control";
/// Jobs became claimable (an execution started, resumed or got more
/// concurrency): no payload.
pub const WORK: &str = "mino_work";
/// An execution's jobs moved (counts changed): payload `<id>`.
pub const EXECUTION: &str = "mino_execution";
/// Webhook deliveries were queued: no payload.
pub const WEBHOOKS: &str = "mino_webhooks";

#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    State(Uuid, String),
    /// Notifications may have been missed: re-read what you watch.
    Resync,
}

#[derive(Clone)]
pub struct Hub {
    control: broadcast::Sender<Control>,
    executions: broadcast::Sender<Option<Uuid>>,
    work: Arc<Notify>,
    moved: Arc<Notify>,
    webhooks: Arc<Notify>,
}

impl Hub {
    /// A hub that hears nothing from other processes (tests of a single
    /// process, benchmarks): signals sent with [`Hub::local`] still arrive.
    pub fn detached() -> Hub {
        Hub {
            control: broadcast::channel(1024).0,
            executions: broadcast::channel(4096).0,
            work: Arc::new(Notify::new()),
            moved: Arc::new(Notify::new()),
            webhooks: Arc::new(Notify::new()),
        }
    }

    /// Listens on the database until `shutdown` turns true.
    pub fn start(db: PgPool, mut shutdown: watch::Receiver<bool>) -> Hub {
        let hub = Hub::detached();
        let me = hub.clone();
        tokio::spawn(async move {
            loop {
                let mut listener = match PgListener::connect_with(&db).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "LISTEN connection failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            _ = shutdown.changed() => return,
                        }
                    }
                };
                if let Err(e) = listener
                    .listen_all([CONTROL, WORK, EXECUTION, WEBHOOKS])
                    .await
                {
                    tracing::error!(error = %e, "LISTEN failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                // Whatever happened while we weren't listening is unknown.
                me.resync();
                loop {
                    let next = tokio::select! {
                        n = listener.try_recv() => n,
                        _ = shutdown.changed() => return,
                    };
                    match next {
                        Ok(Some(n)) => me.dispatch(n.channel(), n.payload()),
                        // The connection dropped; the next try_recv
                        // reconnects, and we may have missed signals.
                        Ok(None) => me.resync(),
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                            me.resync();
                            break;
                        }
                    }
                }
            }
        });
        hub
    }

    fn resync(&self) {
        let _ = self.control.send(Control::Resync);
        let _ = self.executions.send(None);
        self.work.notify_waiters();
        self.moved.notify_waiters();
        self.webhooks.notify_waiters();
    }

    /// Delivers a signal as if it had come from the database.
    pub fn dispatch(&self, channel: &str, payload: &str) {
        match channel {
            CONTROL => {
                let mut parts = payload.splitn(2, ' ');
                let id = parts.next().and_then(|s| s.parse().ok());
                let state = parts.next().unwrap_or_default().to_string();
                if let Some(id) = id {
                    let _ = self.control.send(Control::State(id, state));
                }
            }
            WORK => self.work.notify_waiters(),
            WEBHOOKS => self.webhooks.notify_waiters(),
            EXECUTION => {
                if let Ok(id) = payload.parse() {
                    let _ = self.executions.send(Some(id));
                }
                self.moved.notify_waiters();
            }
            _ => {}
        }
    }

    pub fn control(&self) -> broadcast::Receiver<Control> {
        self.control.subscribe()
    }

    /// `Some(id)`: that execution changed; `None`: re-read everything.
    pub fn executions(&self) -> broadcast::Receiver<Option<Uuid>> {
        self.executions.subscribe()
    }

    /// Woken when jobs may have become claimable.
    pub fn work(&self) -> Arc<Notify> {
        self.work.clone()
    }

    /// Woken when webhook deliveries were queued.
    pub fn webhooks(&self) -> Arc<Notify> {
        self.webhooks.clone()
    }

    /// Woken whenever some execution's jobs moved: a full execution may
    /// have a free slot again.
    pub fn moved(&self) -> Arc<Notify> {
        self.moved.clone()
    }
}

/// Sends a notification; inside a transaction it is delivered at commit
/// (and not at all on rollback).
pub async fn notify(db: impl PgExecutor<'_>, channel: &str, payload: &str) -> sqlx::Result<()> {
    crate::server::db::notify(db, channel, payload).await
}

/// An execution's new state, for every worker and viewer.
pub async fn notify_state(db: impl PgExecutor<'_>, id: Uuid, state: &str) -> sqlx::Result<()> {
    notify(db, CONTROL, &format!("{id} {state}")).await
}
