//! The money path: every movement goes through [`Ledger::submit`].
//!
//! Requests are spread over shards by wallet id; each shard has one writer task that commits
//! whatever has queued up as one transaction (group commit). All requests for one wallet go
//! to one writer, so a hot wallet pays one durable commit per batch instead of per request.
//! A transfer touches two wallets, possibly of two shards; it goes to the writer of the one
//! with more requests in flight (see [`heat`]), so that a hot wallet keeps its group commit
//! on either side of its transfers. A decision about a hold goes to its source's writer, or,
//! to confirm a transfer, like the transfer. Holds past their time are expired through the
//! same writers by [`expiry`].

pub mod expiry;
mod heat;
mod placed;
mod plan;
mod remembered;
mod writer;

use crate::domain::{
    Balance, HoldDecision, HoldRecord, HoldTerms, IdempotencyKey, OperationId, OperationRecord,
    OperationRequest, TransferRecord, TransferRequest, WalletId,
};
use crate::events::ShowRecord;
use crate::store::citus::ShardMap;
use heat::Heat;
use placed::Placed;
use sqlx::postgres::PgConnectOptions;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use writer::{Job, Writer};

/// Writers on Citus unless configured. On plain PostgreSQL the default is one: a batch there
/// is one statement whose fixed cost (starting the executor, the tables' checks, the commit)
/// is shared by everything queued, and more writers split the queue into smaller batches that
/// cost the database more per operation. On Citus a batch locks shard by shard, round trip
/// after round trip, and several writers overlap those.
const CITUS_WRITERS: usize = 4;

/// How the writers are laid out.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Number of writer tasks, each with its own database connection; `None`: one on plain
    /// PostgreSQL, [`CITUS_WRITERS`] on Citus.
    pub shards: Option<usize>,
    /// Most operations committed in one transaction. 1 gives one transaction per request.
    pub max_batch: usize,
    /// Requests waiting per shard before submitters wait for room (backpressure).
    pub queue_capacity: usize,
    /// Which writer takes a transfer whose wallets belong to two writers.
    pub transfer_routing: TransferRouting,
    /// How long a request may wait for its commit, retries included.
    pub request_timeout: Duration,
}

/// Everything the writers decide. Operations and transfers are named by an id of the one
/// namespace; a decision about a hold is named by its hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Operation(OperationRequest),
    Transfer(TransferRequest),
    Hold(HoldDecision),
}

/// What the writers decided and stored, one kind per kind of [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Operation(OperationRecord),
    Transfer(TransferRecord),
    Hold(HoldRecord),
}

impl Request {
    /// The id a client named this request by; `None` for a decision about a hold, which is
    /// known by its hold.
    pub fn id(&self) -> Option<OperationId> {
        match self {
            Self::Operation(request) => Some(request.id),
            Self::Transfer(request) => Some(request.id()),
            Self::Hold(_) => None,
        }
    }

    /// Set when the client named the request with a header rather than an id.
    fn idempotency_key(&self) -> Option<&IdempotencyKey> {
        match self {
            Self::Operation(request) => request.idempotency_key.as_ref(),
            Self::Transfer(request) => request.idempotency_key(),
            Self::Hold(_) => None,
        }
    }

    /// The id of the destination's history entry, for a transfer.
    fn incoming_side(&self) -> Option<OperationId> {
        match self {
            Self::Transfer(request) => Some(request.id().incoming_side()),
            Self::Operation(_) | Self::Hold(_) => None,
        }
    }

    /// The wallets whose balances decide this request.
    fn wallets(&self) -> impl Iterator<Item = WalletId> {
        let (first, second) = self.wallet_pair();
        std::iter::once(first).chain(second)
    }

    /// Its wallet, or a transfer's source and destination, or the wallets a decision about
    /// a hold changes.
    fn wallet_pair(&self) -> (WalletId, Option<WalletId>) {
        match self {
            Self::Operation(request) => (request.wallet_id, None),
            Self::Transfer(request) => (request.from(), Some(request.to())),
            Self::Hold(decision) => decision.wallets(),
        }
    }
}

impl Record {
    /// Whether this is a rejection (stored, and answered as a problem).
    pub fn is_rejection(&self) -> bool {
        match self {
            Self::Operation(record) => record.status.reason().is_some(),
            Self::Transfer(record) => record.status.reason().is_some(),
            Self::Hold(_) => false,
        }
    }

    /// Whether `request` asks for exactly what this record decided: then it is a replay;
    /// otherwise its id was reused for something else.
    pub fn matches(&self, request: &Request) -> bool {
        match (self, request) {
            (Self::Operation(record), Request::Operation(request)) => record.matches(request),
            (Self::Transfer(record), Request::Transfer(request)) => record.matches(request),
            _ => false,
        }
    }

    /// The ids of the history entries this record stores, each taken in the id namespace.
    /// A hold's resolution takes none: its entries get new ids.
    fn entry_ids(&self) -> impl Iterator<Item = OperationId> {
        let (id, incoming) = match self {
            Self::Operation(record) => (Some(record.id), None),
            Self::Transfer(record) => (Some(record.id), record.incoming_id()),
            Self::Hold(_) => (None, None),
        };
        id.into_iter().chain(incoming)
    }
}

/// A request the ledger takes, and the record it answers with.
pub trait Submission: Into<Request> {
    type Record;

    /// The record of this kind of request; `None` is a writer answering a request with a
    /// record of another kind, a bug.
    fn record(record: Record) -> Option<Self::Record>;
}

impl From<OperationRequest> for Request {
    fn from(request: OperationRequest) -> Self {
        Self::Operation(request)
    }
}

impl From<TransferRequest> for Request {
    fn from(request: TransferRequest) -> Self {
        Self::Transfer(request)
    }
}

impl From<HoldDecision> for Request {
    fn from(decision: HoldDecision) -> Self {
        Self::Hold(decision)
    }
}

impl Submission for OperationRequest {
    type Record = OperationRecord;

    fn record(record: Record) -> Option<OperationRecord> {
        match record {
            Record::Operation(record) => Some(record),
            _ => None,
        }
    }
}

impl Submission for TransferRequest {
    type Record = TransferRecord;

    fn record(record: Record) -> Option<TransferRecord> {
        match record {
            Record::Transfer(record) => Some(record),
            _ => None,
        }
    }
}

impl Submission for HoldDecision {
    type Record = HoldRecord;

    fn record(record: Record) -> Option<HoldRecord> {
        match record {
            Record::Hold(record) => Some(record),
            _ => None,
        }
    }
}

/// Which writer takes a transfer whose two wallets belong to different writers. Any writer
/// may decide any request (the row locks make them agree); the choice decides only which
/// wallet's requests end up batched together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TransferRouting {
    /// The writer of whichever wallet has more requests in flight, the source's on a tie:
    /// a hot wallet keeps its group commit on either side of its transfers.
    #[default]
    Busier,
    /// Always the source's writer: a hot destination is locked by every writer in turn.
    Source,
}

/// A decided request and whether it had been decided before (a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<R = Record> {
    pub record: R,
    pub replayed: bool,
}

/// Why the ledger did not decide a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The wallet does not exist; for a transfer, the first of its two that does not.
    #[error("wallet {0} not found")]
    WalletNotFound(WalletId),
    #[error("operation id already used with a different payload")]
    IdempotencyKeyReused,
    #[error("hold {0} not found")]
    HoldNotFound(OperationId),
    /// The hold was confirmed, voided or expired otherwise than this request asks.
    #[error("hold {0} no longer pending")]
    HoldNotPending(OperationId),
    /// Confirming the hold would take its destination past the balance limit; nothing was
    /// stored and the hold is still pending.
    #[error("wallet {0} would pass the balance limit")]
    DestinationLimit(WalletId, Balance),
    /// Another request of its atomic batch failed, so none of them was stored.
    #[error("another item of the atomic batch failed")]
    LinkedItemFailed,
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
    heat: Arc<Heat>,
    placed: Arc<Placed>,
    transfer_routing: TransferRouting,
    request_timeout: Duration,
    citus: Option<Arc<ShardMap>>,
}

impl Ledger {
    /// Starts one writer per shard. They connect lazily, so a database that is down at start
    /// costs requests a 503, not the process. Each opens a connection by `connect`, and, with
    /// `pipeline` (not on Citus), one more by it for the batches it sends while others
    /// commit (see [`writer`]).
    /// With `events`, every batch also writes the events of what it decided, each record
    /// shown by it.
    /// On Citus (`citus` says where the wallets live), the wallets of one shard go to one
    /// writer, so that a batch locks as few shards as it can.
    pub fn start(
        config: &LedgerConfig,
        connect: PgConnectOptions,
        pipeline: Option<tokio_postgres::Config>,
        events: Option<ShowRecord>,
        citus: Option<ShardMap>,
    ) -> (Self, JoinSet<()>) {
        let citus = citus.map(Arc::new);
        let mut tasks = JoinSet::new();
        let placed = Arc::new(Placed::default());
        let writers = config
            .shards
            .unwrap_or(if citus.is_some() { CITUS_WRITERS } else { 1 })
            .max(1);
        tracing::info!(writers, "starting the ledger's writers");
        let shards = (0..writers)
            .map(|_| {
                let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
                let writer = Writer::new(
                    connect.clone(),
                    pipeline.clone(),
                    config.max_batch.max(1),
                    Arc::clone(&placed),
                    events,
                    citus.clone(),
                );
                tasks.spawn(writer.run(receiver));
                sender
            })
            .collect();
        let ledger = Self {
            shards,
            heat: Arc::new(Heat::default()),
            placed,
            transfer_routing: config.transfer_routing,
            request_timeout: config.request_timeout,
            citus,
        };
        (ledger, tasks)
    }

    /// Decides one request and returns only after its outcome is durable.
    pub async fn submit<S: Submission>(
        &self,
        request: S,
    ) -> Result<Outcome<S::Record>, LedgerError> {
        let mut verdicts = self.submit_all(vec![request.into()], false).await?;
        let outcome = verdicts.pop().ok_or(LedgerError::Internal)??;
        let record = S::record(outcome.record).ok_or_else(|| {
            tracing::error!("a request was answered with a record of another kind");
            LedgerError::Internal
        })?;
        Ok(Outcome {
            record,
            replayed: outcome.replayed,
        })
    }

    /// Decides `requests` in order, as one unit of one writer, and returns their verdicts in
    /// the same order once they are durable. `atomic`: all of them succeed, or none is
    /// stored; then the ones that did not fail are [`LedgerError::LinkedItemFailed`] and a
    /// rejection is answered without being stored. `Err` when the batch could not be
    /// decided at all (the database is unavailable).
    pub async fn submit_all(
        &self,
        requests: Vec<Request>,
        atomic: bool,
    ) -> Result<Vec<Result<Outcome, LedgerError>>, LedgerError> {
        let first = requests.first().ok_or(LedgerError::Internal)?;
        let deadline = Instant::now() + self.request_timeout;
        let (reply, answer) = oneshot::channel();
        let queue = &self.shards[self.shard_for(first)];
        // Counted until answered (or given up on), so that transfers see these wallets as
        // busy.
        let _in_flight: Vec<_> = requests
            .iter()
            .map(|request| {
                let (wallet, other) = request.wallet_pair();
                self.heat.enter(wallet, other)
            })
            .collect();
        let job = Job {
            requests,
            atomic,
            deadline,
            reply,
        };
        let verdicts = match tokio::time::timeout_at(deadline, queue.send(job)).await {
            Ok(Ok(())) => answer.await.unwrap_or(Err(LedgerError::Unavailable))?,
            Ok(Err(_)) | Err(_) => return Err(LedgerError::Unavailable),
        };
        for verdict in &verdicts {
            self.note_holds(verdict);
        }
        Ok(verdicts)
    }

    /// What never changes about a hold placed through this instance and still pending, as
    /// far as this instance knows; `None` when it does not know the hold.
    pub fn placed_hold(&self, id: OperationId) -> Option<HoldTerms> {
        self.placed.get(id).map(|hold| hold.terms())
    }

    /// Keeps [`Ledger::placed_hold`] up to date with a decided request. A replayed placement
    /// is not remembered: its hold may have been resolved since.
    fn note_holds(&self, outcome: &Result<Outcome, LedgerError>) {
        let placed = match outcome {
            Ok(Outcome { record, replayed }) => match record {
                Record::Hold(hold) => return self.placed.forget(hold.id),
                _ if *replayed => None,
                Record::Operation(record) => record.placed_hold(),
                Record::Transfer(record) => record.placed_hold(),
            },
            Err(LedgerError::HoldNotPending(id) | LedgerError::HoldNotFound(id)) => {
                return self.placed.forget(*id);
            }
            Err(_) => None,
        };
        if let Some(hold) = placed {
            self.placed.remember(hold);
        }
    }

    /// Requests waiting in each shard's queue, for the queue-depth gauge.
    pub fn queue_depths(&self) -> impl Iterator<Item = usize> + '_ {
        self.shards
            .iter()
            .map(|queue| queue.max_capacity() - queue.capacity())
    }

    /// The writer that decides `request`: its wallet's, or for a transfer, as
    /// [`TransferRouting`] says. Keeping a hot wallet's requests, and so its row lock, on one
    /// writer lets that writer batch them.
    fn shard_for(&self, request: &Request) -> usize {
        let wallet = match request.wallet_pair() {
            (from, Some(to))
                if self.transfer_routing == TransferRouting::Busier
                    && self.heat.of(to) > self.heat.of(from) =>
            {
                to
            }
            (from, _) => from,
        };
        self.shard_of(wallet)
    }

    fn shard_of(&self, wallet: WalletId) -> usize {
        match &self.citus {
            Some(map) => map.shard_of(wallet) % self.shards.len(),
            None => (wallet.as_uuid().as_u128() % self.shards.len() as u128) as usize,
        }
    }
}
