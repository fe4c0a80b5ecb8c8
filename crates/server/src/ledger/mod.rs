//! The money path: every movement goes through [`Ledger::submit`].
//!
//! Requests are spread over shards by wallet id; each shard has one writer task that commits
//! whatever has queued up as one transaction (group commit). All requests for one wallet go
//! to one writer, so a hot wallet pays one durable commit per batch instead of per request.

mod plan;
mod writer;

use crate::domain::{OperationRecord, OperationRequest, WalletId};
use sqlx::postgres::PgConnectOptions;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use writer::{Job, Writer};

/// How the writers are laid out.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Number of writer tasks, each with its own database connection.
    pub shards: usize,
    /// Most operations committed in one transaction. 1 gives one transaction per request.
    pub max_batch: usize,
    /// Requests waiting per shard before submitters wait for room (backpressure).
    pub queue_capacity: usize,
    /// How long a request may wait for its commit, retries included.
    pub request_timeout: Duration,
}

/// A decided operation and whether it had been decided before (a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub record: OperationRecord,
    pub replayed: bool,
}

/// Why the ledger did not decide a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("wallet not found")]
    WalletNotFound,
    #[error("operation id already used with a different payload")]
    IdempotencyKeyReused,
    /// The database could not be reached before the deadline. The operation may or may not
    /// have been committed; a retry with the same id settles which.
    #[error("ledger unavailable")]
    Unavailable,
    /// The batch failed in a way no retry can fix (a bug); the writer logged the details.
    /// Nothing of the batch was committed.
    #[error("ledger failure")]
    Internal,
}

/// Handle to the writers. Cheap to clone; the writers stop once every handle is dropped and
/// their queues are drained.
#[derive(Debug, Clone)]
pub struct Ledger {
    shards: Arc<[mpsc::Sender<Job>]>,
    request_timeout: Duration,
}

impl Ledger {
    /// Starts one writer per shard. They connect lazily, so a database that is down at start
    /// costs requests a 503, not the process.
    pub fn start(config: &LedgerConfig, connect: PgConnectOptions) -> (Self, JoinSet<()>) {
        let mut tasks = JoinSet::new();
        let shards = (0..config.shards.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
                let writer = Writer::new(connect.clone(), config.max_batch.max(1));
                tasks.spawn(writer.run(receiver));
                sender
            })
            .collect();
        let ledger = Self {
            shards,
            request_timeout: config.request_timeout,
        };
        (ledger, tasks)
    }

    /// Decides one operation and returns only after its outcome is durable.
    pub async fn submit(&self, request: OperationRequest) -> Result<Outcome, LedgerError> {
        let deadline = Instant::now() + self.request_timeout;
        let (reply, answer) = oneshot::channel();
        let queue = &self.shards[self.shard_of(request.wallet_id)];
        let job = Job {
            request,
            deadline,
            reply,
        };
        match tokio::time::timeout_at(deadline, queue.send(job)).await {
            Ok(Ok(())) => answer.await.unwrap_or(Err(LedgerError::Unavailable)),
            Ok(Err(_)) | Err(_) => Err(LedgerError::Unavailable),
        }
    }

    /// Requests waiting in each shard's queue, for the queue-depth gauge.
    pub fn queue_depths(&self) -> impl Iterator<Item = usize> + '_ {
        self.shards
            .iter()
            .map(|queue| queue.max_capacity() - queue.capacity())
    }

    fn shard_of(&self, wallet: WalletId) -> usize {
        (wallet.as_uuid().as_u128() % self.shards.len() as u128) as usize
    }
}
