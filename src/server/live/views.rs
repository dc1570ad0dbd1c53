//! Live views of executions: one watcher task per execution that someone
//! in this process is watching. It re-reads the execution's snapshot from
//! the database when the hub says the execution moved (at most every
//! [`MIN_GAP`], so a burst of changes costs one read), assigns it the next
//! sequence number and publishes it on a `watch` channel; every SSE stream
//! of that execution sends the latest value. A slow subscriber skips
//! intermediate snapshots (each is complete, so nothing is lost) and never
//! slows the others. The task ends when the last subscriber leaves or the
//! execution ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::Hub;
use crate::model::LiveSnapshot;
use crate::server::db::{self, executions::LiveParts};

/// Shortest time between two reads of one execution's snapshot.
pub const MIN_GAP: Duration = Duration::from_millis(100);
/// Re-read this often even without a signal (elapsed time, rate, and a
/// safety net under NOTIFY).
const REFRESH: Duration = Duration::from_secs(5);
/// The window the rate is computed over.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// The least watching, and the fewest finished jobs, a rate is given on.
const MIN_RATE_SPAN: Duration = Duration::from_secs(5);
const MIN_RATE_JOBS: i64 = 3;

pub type Latest = watch::Receiver<Option<Arc<LiveSnapshot>>>;
type Publisher = Arc<watch::Sender<Option<Arc<LiveSnapshot>>>>;

pub struct Watchers {
    db: PgPool,
    hub: Hub,
    running: Mutex<HashMap<Uuid, Publisher>>,
}

impl Watchers {
    pub fn new(db: PgPool, hub: Hub) -> Arc<Watchers> {
        Arc::new(Watchers {
            db,
            hub,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// How many live views this process serves now.
    pub fn subscribers(&self) -> usize {
        let running = self.running.lock().expect("watchers");
        running.values().map(|tx| tx.receiver_count()).sum()
    }

    /// The latest snapshots of `execution`, starting its watcher if needed.
    /// The caller has checked that the viewer may see it.
    pub fn subscribe(self: &Arc<Self>, execution: Uuid) -> Latest {
        let mut running = self.running.lock().expect("watchers");
        if let Some(tx) = running.get(&execution) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(None);
        let tx = Arc::new(tx);
        running.insert(execution, tx.clone());
        let me = self.clone();
        let signals = self.hub.executions();
        tokio::spawn(async move { me.watch(execution, tx, signals).await });
        rx
    }

    async fn watch(
        self: Arc<Self>,
        id: Uuid,
        tx: Publisher,
        mut signals: broadcast::Receiver<Option<Uuid>>,
    ) {
        let mut seq = 0u64;
        let mut done_history: VecDeque<(Instant, i64)> = VecDeque::new();
        loop {
            let read_at = Instant::now();
            match db::executions::live_parts(&self.db, id).await {
                Ok(Some(LiveParts {
                    execution,
                    running_jobs,
                    events,
                    waiting_retry,
                })) => {
                    let done = execution.completed + execution.errors + execution.cancelled;
                    done_history.push_back((read_at, done));
                    while done_history
                        .front()
                        .is_some_and(|(t, _)| read_at.duration_since(*t) > RATE_WINDOW)
                    {
                        done_history.pop_front();
                    }
                    // A rate only once there is enough to go on: some
                    // seconds watched and some jobs finished in them (two
                    // snapshots a few ms apart said "3961 jobs/min").
                    let per_minute = match (done_history.front(), done_history.back()) {
                        (Some((t0, d0)), Some((t1, d1)))
                            if t1.duration_since(*t0) >= MIN_RATE_SPAN
                                && d1 - d0 >= MIN_RATE_JOBS =>
                        {
                            (d1 - d0) as f64 * 60.0 / t1.duration_since(*t0).as_secs_f64()
                        }
                        _ => 0.0,
                    };
                    let left = execution.queued + execution.running;
                    let eta_secs = (per_minute > 0.0 && execution.is_active())
                        .then(|| (left as f64 * 60.0 / per_minute).round() as i64);
                    // Strictly increasing, and comparable across server
                    // restarts: milliseconds since the epoch, bumped if needed.
                    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
                    seq = now_ms.max(seq + 1);
                    let last = !execution.is_active();
                    tx.send_replace(Some(Arc::new(LiveSnapshot {
                        seq,
                        execution,
                        per_minute,
                        eta_secs,
                        running_jobs,
                        events,
                        last,
                        waiting_retry,
                    })));
                    if last {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(execution = %id, error = %e, "reading a live snapshot failed")
                }
            }
            // Wait for this execution to move (or a resync, or the refresh
            // period), unless nobody is watching any more.
            let woke = tokio::select! {
                w = wait_for_signal(&mut signals, id) => w,
                _ = tokio::time::sleep(REFRESH) => true,
                _ = tx.closed() => false,
            };
            if !woke && self.leave_if_unwatched(id, &tx) {
                return;
            }
            let since = read_at.elapsed();
            if since < MIN_GAP {
                tokio::time::sleep(MIN_GAP - since).await;
            }
        }
        self.leave(id, &tx);
    }

    /// Removes the watcher if no one subscribed meanwhile.
    fn leave_if_unwatched(&self, id: Uuid, tx: &Publisher) -> bool {
        let mut running = self.running.lock().expect("watchers");
        if tx.receiver_count() > 0 {
            return false;
        }
        if running.get(&id).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            running.remove(&id);
        }
        true
    }

    /// The execution ended: later subscribers get a new watcher, which
    /// reads the final state once and ends.
    fn leave(&self, id: Uuid, tx: &Publisher) {
        let mut running = self.running.lock().expect("watchers");
        if running.get(&id).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            running.remove(&id);
        }
    }
}

/// True when execution `id` moved or everything must be re-read.
async fn wait_for_signal(signals: &mut broadcast::Receiver<Option<Uuid>>, id: Uuid) -> bool {
    loop {
        match signals.recv().await {
            Ok(Some(moved)) if moved == id => return true,
            Ok(Some(_)) => continue,
            Ok(None) | Err(broadcast::error::RecvError::Lagged(_)) => return true,
            Err(broadcast::error::RecvError::Closed) => {
                // No hub any more: fall back to the refresh period.
                std::future::pending::<()>().await;
            }
        }
    }
}
