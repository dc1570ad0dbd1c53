//! The result writer: job tasks hand their successful results here, and
//! one task writes whatever has piled up in a single statement and, in the
//! same transaction, settles the executions that moved (ends those with
//! nothing left) and tells live views they moved (NOTIFY). Under load that turns a few
//! round trips per job into a few per batch; when idle a result is
//! written at once. A job's slot is freed only after its result is
//! written, so the database's count of running jobs never undercounts.

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::server::agents::AgentOutput;
use crate::server::db;
use crate::server::db::jobs::{Claimed, Completion};

/// Most results written by one statement.
const MAX_BATCH: usize = 256;

enum Msg {
    // Boxed: a completion is large, and most messages are `Moved`.
    Done(Box<Completion>, Uuid, oneshot::Sender<Result<bool, String>>),
    /// A job of this execution changed some other way (failed, cancelled,
    /// reported progress): settle it and tell viewers.
    Moved(Uuid, oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

pub fn start(db: PgPool, worker: String) -> (Writer, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    (Writer { tx }, tokio::spawn(write_loop(db, worker, rx)))
}

impl Writer {
    /// Writes a successful attempt; false when the attempt was stale.
    pub async fn complete(
        &self,
        job: &Claimed,
        out: AgentOutput,
        log: Value,
        verdict: crate::server::evaluate::JobVerdict,
    ) -> sqlx::Result<bool> {
        let (reply, answer) = oneshot::channel();
        let done = Completion {
            id: job.id,
            attempt: job.attempt,
            extracted: Value::Object(out.values),
            raw_output: out.raw.to_string(),
            log,
            verdict,
            usage: out.usage,
        };
        let gone = || sqlx::Error::Protocol("the result writer has stopped".into());
        self.tx
            .send(Msg::Done(Box::new(done), job.execution_id, reply))
            .await
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(sqlx::Error::Protocol)
    }

    pub async fn moved(&self, execution_id: Uuid) {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Msg::Moved(execution_id, reply)).await.is_ok() {
            let _ = answer.await;
        }
    }
}

async fn write_loop(db: PgPool, worker: String, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut moved = BTreeSet::new();
        let mut done = Vec::new();
        let mut replies = Vec::new();
        let mut acks = Vec::new();
        for m in batch {
            match m {
                Msg::Done(c, execution, reply) => {
                    moved.insert(execution);
                    replies.push((c.id, reply));
                    done.push(*c);
                }
                Msg::Moved(execution, ack) => {
                    moved.insert(execution);
                    acks.push(ack);
                }
            }
        }
        if !done.is_empty() {
            super::stats::add(&super::stats::WRITES, 1);
            super::stats::add(&super::stats::WRITTEN, done.len() as u64);
        }
        let started = std::time::Instant::now();
        let written = write_with_retry(&db, &worker, &done, &moved_ids(&moved)).await;
        super::stats::add(
            &super::stats::WRITE_MICROS,
            started.elapsed().as_micros() as u64,
        );
        match written {
            Ok(written) => {
                let written: BTreeSet<i64> = written.into_iter().map(|(id, _)| id).collect();
                for (id, reply) in replies {
                    let _ = reply.send(Ok(written.contains(&id)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = replies.len(), "writing results failed");
                for (_, reply) in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
                // The executions still moved (failures, progress): settle
                // them on their own.
                if let Err(e) = db::jobs::settle_and_notify(&db, &moved_ids(&moved)).await {
                    tracing::error!(error = %e, "settling executions failed");
                }
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn moved_ids(moved: &BTreeSet<Uuid>) -> Vec<Uuid> {
    moved.iter().copied().collect()
}

/// Two writers (in two processes) whose batches span the same executions
/// can deadlock on those executions' rows; Postgres aborts one, which
/// simply writes again. Results and settling commit together.
async fn write_with_retry(
    db: &PgPool,
    worker: &str,
    done: &[Completion],
    moved: &[Uuid],
) -> sqlx::Result<Vec<(i64, Uuid)>> {
    let mut tries = 0;
    loop {
        match db::jobs::complete_and_settle(db, worker, done, moved).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") && tries < 3 => {
                tries += 1;
                tracing::warn!(tries, "writing results deadlocked; writing again");
            }
            other => return other,
        }
    }
}
