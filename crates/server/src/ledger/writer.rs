//! One shard's writer: drain the queue, commit the batch, answer, repeat; and while one
//! batch commits, send the next.

use super::placed::Placed;
use super::plan::{Change, plan};
use super::remembered::Remembered;
use super::{LedgerError, Outcome, Record, Request};
use crate::domain::{Funds, HoldRecord, OperationId, OperationKind, OperationRecord, WalletId};
use crate::events::{self, ShowRecord};
use crate::store::batch::{self, Statement};
use crate::store::citus::ShardMap;
use crate::store::{StoreError, StoreResult};
use crate::telemetry::metric;
use chrono::SubsecRound;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Postgres, Transaction};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

type Verdicts = Vec<Result<Outcome, LedgerError>>;

/// Requests waiting for their batch: one, or a client's batch of them, decided in order.
#[derive(Debug)]
pub struct Job {
    pub requests: Vec<Request>,
    /// All of `requests` succeed, or none of them is stored.
    pub atomic: bool,
    pub deadline: Instant,
    /// Their verdicts in order, or why none was decided.
    pub reply: oneshot::Sender<Result<Verdicts, LedgerError>>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Batches a writer keeps in flight on its pipelined connection: one committing, the next
/// already waiting in the database's socket behind it.
const PIPELINE_DEPTH: usize = 2;

pub struct Writer {
    connect: PgConnectOptions,
    /// The connection of the batches that lock and read first, each a transaction of
    /// several round trips.
    connection: Option<PgConnection>,
    /// How to open `pipeline`; `None` on Citus, where every batch locks and reads first.
    pipeline_config: Option<tokio_postgres::Config>,
    /// The connection of the batches decided on remembered funds, each one statement that
    /// is its whole transaction, sent without waiting for the statement before it.
    pipeline: Option<Pipeline>,
    max_batch: usize,
    placed: Arc<Placed>,
    /// Set when events are on: every batch then writes the events of what it decided.
    events: Option<ShowRecord>,
    /// Where the wallets live, on Citus.
    citus: Option<Arc<ShardMap>>,
    /// What this writer's commits left in its wallets (not on Citus, where a batch locks its
    /// wallets shard by shard first).
    remembered: Remembered,
}

impl Writer {
    pub fn new(
        connect: PgConnectOptions,
        pipeline_config: Option<tokio_postgres::Config>,
        max_batch: usize,
        placed: Arc<Placed>,
        events: Option<ShowRecord>,
        citus: Option<Arc<ShardMap>>,
    ) -> Self {
        Self {
            connect,
            connection: None,
            pipeline_config: pipeline_config.filter(|_| citus.is_none()),
            pipeline: None,
            max_batch,
            placed,
            events,
            citus,
            remembered: Remembered::default(),
        }
    }

    /// Runs until every sender is gone, the queue is empty and every batch answered.
    ///
    /// Batches form without a timer: while commits are in flight, new requests queue up,
    /// and the next batch takes all of them. Under light load a batch is a single request.
    /// A transaction takes at most `max_batch` requests, however they came (one job may
    /// carry many), except a single job larger than that, which is never split.
    ///
    /// A batch whose wallets are all remembered is decided on the funds the batches before
    /// it will leave, and its statement sent while theirs still run (up to
    /// [`PIPELINE_DEPTH`] in flight): the database runs them one after the other, in order,
    /// each its own transaction, and starts the next the moment one commits, instead of
    /// waiting for this writer to hear of the commit, answer, and decide again. Each
    /// statement checks the funds it was decided on, so one decided on a batch that failed
    /// fails too, unless it did not depend on it. Any other batch waits until nothing is in
    /// flight, and is decided the usual way, after locking and reading.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut queued = Vec::with_capacity(self.max_batch);
        let mut in_flight = VecDeque::with_capacity(PIPELINE_DEPTH);
        let mut open = true;
        loop {
            if self.next_is_due(&queued, &in_flight) {
                let mut jobs = self.next_batch(&mut queued);
                if let Some(sent) = self.send(&mut jobs).await {
                    in_flight.push_back(sent);
                } else if !jobs.is_empty() {
                    while let Some(mut sent) = in_flight.pop_front() {
                        let written = sent.outcome().await;
                        self.settle(sent, written, &mut in_flight).await;
                    }
                    self.commit(&mut jobs).await;
                }
                continue;
            }
            // Nothing to send: wait for the oldest statement's end, or for requests while
            // another statement may go out.
            let Some(mut oldest) = in_flight.pop_front() else {
                if !open || queue.recv_many(&mut queued, self.max_batch).await == 0 {
                    return;
                }
                continue;
            };
            let room = open && in_flight.len() + 1 < PIPELINE_DEPTH;
            tokio::select! {
                biased;
                written = oldest.outcome() => self.settle(oldest, written, &mut in_flight).await,
                received = queue.recv_many(&mut queued, self.max_batch), if room => {
                    open = received > 0;
                    in_flight.push_front(oldest);
                }
            }
        }
    }

    /// Whether the next batch goes out now: when nothing is in flight, as soon as anything is
    /// queued; behind a batch in flight, once as many requests are queued as it holds (or a
    /// full batch). Sent any earlier, batches would shrink to whatever arrived in the
    /// meantime, each paying a statement's fixed cost for a few requests.
    fn next_is_due(&self, queued: &[Job], in_flight: &VecDeque<Sent>) -> bool {
        let waiting: usize = queued.iter().map(|job| job.requests.len()).sum();
        match in_flight.back() {
            None => waiting > 0,
            Some(last) => {
                in_flight.len() < PIPELINE_DEPTH
                    && waiting > 0
                    && waiting >= last.verdicts.len().min(self.max_batch)
            }
        }
    }

    /// The first jobs of `queued` that fit in one transaction, taken out of it.
    fn next_batch(&self, queued: &mut Vec<Job>) -> Vec<Job> {
        let mut requests = 0;
        let fits = queued
            .iter()
            .take_while(|job| {
                requests += job.requests.len();
                requests <= self.max_batch
            })
            .count()
            .max(1);
        queued.drain(..fits).collect()
    }

    /// Decides `jobs` on the funds this writer remembers and sends their statement on the
    /// pipelined connection. `None` when they cannot go that way (a wallet or a hold not
    /// remembered, a decision that needs a lookup, no pipelined connection): then `jobs`
    /// are left to be decided the usual way, but for those past their deadline, which are
    /// answered here.
    async fn send(&mut self, jobs: &mut Vec<Job>) -> Option<Sent> {
        let deadline = expire(jobs)?;
        let config = self.pipeline_config.as_ref()?;
        let work = Work::of(jobs, self.events, None);
        let basis = Basis::remembered(&self.remembered, &work, &self.placed)?;
        let Some((decided, statement)) = decide(&work, &basis, Lookup::Skip) else {
            // Most likely funds changed by others (rarer: a reused id, a hold resolved
            // elsewhere).
            metrics::counter!(metric::LEDGER_UNREMEMBERED).increment(1);
            self.remembered.changed_by_others(&work.wallets);
            return None;
        };
        let statement = statement?;
        if self
            .pipeline
            .as_ref()
            .is_some_and(|pipeline| pipeline.client.is_closed())
        {
            self.pipeline = None;
        }
        let pipeline = match &mut self.pipeline {
            Some(pipeline) => pipeline,
            None => match tokio::time::timeout_at(deadline, Pipeline::open(config)).await {
                Ok(Ok(pipeline)) => self.pipeline.insert(pipeline),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot open the pipelined connection");
                    return None;
                }
                Err(_) => return None,
            },
        };
        let prepared = match pipeline.prepare(statement.sql().text(), deadline).await {
            Ok(prepared) => prepared,
            Err(error) => {
                tracing::warn!(%error, "cannot prepare a batch's statement");
                self.pipeline = None;
                return None;
            }
        };
        let client = Arc::clone(&pipeline.client);
        let mut written: Pin<Box<dyn Future<Output = Written> + Send>> = Box::pin(async move {
            let params = statement.sql().params();
            match client.query_one(&prepared, &params).await {
                Ok(row) => match row.try_get::<_, i64>(0) {
                    Ok(written) if statement.as_decided(written) => Written::AsDecided,
                    Ok(_) => Written::NotAsDecided,
                    Err(error) => Written::Failed(error),
                },
                Err(error) => match error.as_db_error() {
                    Some(db) if batch::not_as_decided(db.constraint()) => Written::NotAsDecided,
                    Some(_) => Written::Failed(error),
                    None => Written::Unknown(error.to_string()),
                },
            }
        });
        // Its first poll writes the statement to the connection: sent now, in this order.
        if let Poll::Ready(early) =
            std::future::poll_fn(|cx| Poll::Ready(written.as_mut().poll(cx))).await
        {
            written = Box::pin(std::future::ready(early));
        }
        self.remembered.commit(decided.funds(&basis));
        let wallets = work.wallets;
        Some(Sent {
            jobs: std::mem::take(jobs),
            verdicts: decided.verdicts,
            wallets,
            deadline,
            started: Instant::now(),
            written,
        })
    }

    /// Answers a batch whose statement ended `written`. One that was not committed as
    /// decided was the basis of every batch sent after it: those are waited for, and then
    /// each batch that was not committed is decided again the usual way, in order.
    async fn settle(&mut self, sent: Sent, written: Written, in_flight: &mut VecDeque<Sent>) {
        if let Written::AsDecided = written {
            return sent.answer();
        }
        if let Written::NotAsDecided = written {
            // The first to fail: most likely another writer changed its wallets.
            self.remembered.changed_by_others(&sent.wallets);
        }
        let mut connection_lost = written.undone(sent.jobs.len());
        let mut again = vec![sent.jobs];
        for mut later in in_flight.drain(..) {
            if connection_lost {
                // Not waited for: its outcome is as unknown as the connection's.
                metrics::counter!(metric::LEDGER_RETRIES).increment(1);
            } else {
                match later.outcome().await {
                    Written::AsDecided => {
                        later.answer();
                        continue;
                    }
                    written => connection_lost = written.undone(later.jobs.len()),
                }
            }
            again.push(later.jobs);
        }
        if connection_lost {
            // What it still runs ends with it: committed or not, the batches decided again
            // find out (their ids are stored, or not).
            self.pipeline = None;
        }
        self.remembered.forget();
        for mut jobs in again {
            self.commit(&mut jobs).await;
        }
    }

    /// Commits `jobs` as one transaction and answers each, retrying failures until each
    /// job's deadline. Leaves `jobs` empty.
    async fn commit(&mut self, jobs: &mut Vec<Job>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let Some(deadline) = expire(jobs) else {
                return;
            };
            let started = Instant::now();
            match tokio::time::timeout_at(deadline, self.attempt(jobs)).await {
                Ok(Ok(Some(verdicts))) => return answer(std::mem::take(jobs), verdicts, started),
                Ok(Ok(None)) => {
                    // Only a concurrent transaction on another wallet (another instance) can
                    // take an id between a lookup and an insert; the retry finds it stored.
                    tracing::warn!(
                        batch = jobs.len(),
                        "operation ids taken concurrently, retrying"
                    );
                }
                Ok(Err(StoreError::Unavailable(error))) => {
                    tracing::warn!(%error, batch = jobs.len(), "ledger batch failed, retrying");
                }
                Ok(Err(StoreError::Bug(error))) => {
                    // Retrying would fail the same way until the deadline and then tell the
                    // clients to retry too. The transaction was not committed.
                    tracing::error!(error = ?error, batch = jobs.len(), "ledger batch failed");
                    self.connection = None;
                    self.remembered.forget();
                    for job in jobs.drain(..) {
                        let _ = job.reply.send(Err(LedgerError::Internal));
                    }
                    return;
                }
                Err(_) => {
                    tracing::warn!(batch = jobs.len(), "ledger batch timed out, retrying");
                }
            }
            metrics::counter!(metric::LEDGER_RETRIES).increment(1);
            // Whatever went wrong, the connection's state is unknown: start over on a new one.
            // A commit that did happen before the failure makes the retry's insert find its
            // ids, so the batch is answered from what was stored, never applied twice.
            self.connection = None;
            self.remembered.forget();
            tokio::time::sleep_until(deadline.min(Instant::now() + backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Decides and commits the batch the usual way (a batch decided on remembered funds is
    /// sent by [`Writer::send`] instead). Most batches hold no id that was ever seen before
    /// and resolve holds this instance placed and knows pending: the first transaction
    /// locks the wallets but looks up neither ids nor holds; its insert finds any id that
    /// exists, its update any hold no longer pending. Whatever it finds wrong is undone, and
    /// the batch decided again with a lookup first. `None` when even that found an id taken
    /// meanwhile.
    async fn attempt(&mut self, jobs: &[Job]) -> StoreResult<Option<Verdicts>> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            // Whatever refuses a new connection (down, starting up, too many clients) is
            // the database being unavailable to us.
            None => self.connection.insert(
                PgConnection::connect_with(&self.connect)
                    .await
                    .map_err(StoreError::Unavailable)?,
            ),
        };
        let work = Work::of(jobs, self.events, self.citus.as_deref());
        for lookup in [Lookup::Skip, Lookup::First] {
            let mut tx = connection.begin().await?;
            let basis = Basis::read(&mut tx, &work, lookup, &self.placed).await?;
            if let Some((decided, statement)) = decide(&work, &basis, lookup) {
                let written = match statement {
                    Some(statement) => statement.run(&mut tx).await?,
                    None => true,
                };
                if written {
                    tx.commit().await?;
                    self.remembered.commit(decided.funds(&basis));
                    return Ok(Some(decided.verdicts));
                }
            }
            tx.rollback().await?;
        }
        Ok(None)
    }
}

/// Answers the jobs past their deadline and takes them out; the earliest deadline of the
/// others, if any are left.
fn expire(jobs: &mut Vec<Job>) -> Option<Instant> {
    let now = Instant::now();
    for expired in jobs.extract_if(.., |job| job.deadline <= now) {
        let _ = expired.reply.send(Err(LedgerError::Unavailable));
    }
    jobs.iter().map(|job| job.deadline).min()
}

/// The connection of a writer's pipelined statements, and the statements prepared on it (a
/// few shapes, one per combination of the parts a batch writes).
struct Pipeline {
    client: Arc<tokio_postgres::Client>,
    prepared: HashMap<String, tokio_postgres::Statement>,
}

impl Pipeline {
    async fn open(config: &tokio_postgres::Config) -> Result<Self, tokio_postgres::Error> {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "the pipelined connection failed");
            }
        });
        Ok(Self {
            client: Arc::new(client),
            prepared: HashMap::new(),
        })
    }

    /// The statement `sql` prepared on this connection; prepared now if it was not yet,
    /// which waits for what is in flight.
    async fn prepare(
        &mut self,
        sql: &str,
        deadline: Instant,
    ) -> Result<tokio_postgres::Statement, String> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = tokio::time::timeout_at(deadline, self.client.prepare(sql))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|error| error.to_string())?;
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// A batch whose statement is on its way, with the verdicts it answers once it commits.
struct Sent {
    jobs: Vec<Job>,
    verdicts: Verdicts,
    wallets: Vec<WalletId>,
    /// The earliest of its jobs' deadlines: past it, its outcome is taken as unknown.
    deadline: Instant,
    started: Instant,
    written: Pin<Box<dyn Future<Output = Written> + Send>>,
}

impl Sent {
    async fn outcome(&mut self) -> Written {
        tokio::time::timeout_at(self.deadline, &mut self.written)
            .await
            .unwrap_or_else(|_| Written::Unknown("timed out".to_owned()))
    }

    fn answer(self) {
        answer(self.jobs, self.verdicts, self.started);
    }
}

/// How a pipelined statement ended.
enum Written {
    /// Committed, as decided.
    AsDecided,
    /// Not committed: decided on something no longer true (see [`Statement::run`]).
    NotAsDecided,
    /// Not committed, for any other reason the database gave.
    Failed(tokio_postgres::Error),
    /// Committed or not: the connection failed, or the deadline passed.
    Unknown(String),
}

impl Written {
    /// Counts and logs a batch of `jobs` that did not end as decided and goes to be decided
    /// again; `true` when the connection is lost with it.
    fn undone(self, jobs: usize) -> bool {
        match self {
            Self::AsDecided => false,
            Self::NotAsDecided => {
                metrics::counter!(metric::LEDGER_UNREMEMBERED).increment(1);
                false
            }
            Self::Failed(error) => {
                metrics::counter!(metric::LEDGER_RETRIES).increment(1);
                tracing::warn!(%error, batch = jobs, "pipelined batch failed, retrying");
                false
            }
            Self::Unknown(error) => {
                metrics::counter!(metric::LEDGER_RETRIES).increment(1);
                tracing::warn!(%error, batch = jobs, "pipelined batch lost, retrying");
                true
            }
        }
    }
}

/// Sends each job its verdicts, in order, of a batch committed since `started`.
fn answer(jobs: Vec<Job>, verdicts: Verdicts, started: Instant) {
    metrics::histogram!(metric::LEDGER_COMMIT_DURATION).record(started.elapsed());
    metrics::histogram!(metric::LEDGER_BATCH_SIZE).record(verdicts.len() as f64);
    let mut verdicts = verdicts.into_iter();
    for job in jobs {
        let mine = verdicts.by_ref().take(job.requests.len()).collect();
        // The submitter may have gone away; its outcome is stored regardless.
        let _ = job.reply.send(Ok(mine));
    }
}

/// The requests of some jobs as one transaction's, in order, the ranges of them that succeed
/// together or not at all, and the wallets they touch.
struct Work<'a> {
    requests: Vec<&'a Request>,
    atomic: Vec<Range<usize>>,
    /// Every wallet the batch touches, a transfer's two included, in ascending id order:
    /// the order they are locked in.
    wallets: Vec<WalletId>,
    events: Option<ShowRecord>,
    citus: Option<&'a ShardMap>,
}

impl<'a> Work<'a> {
    fn of(jobs: &'a [Job], events: Option<ShowRecord>, citus: Option<&'a ShardMap>) -> Self {
        let requests: Vec<&Request> = jobs.iter().flat_map(|job| &job.requests).collect();
        let mut atomic = Vec::new();
        let mut start = 0;
        for job in jobs {
            let end = start + job.requests.len();
            if job.atomic {
                atomic.push(start..end);
            }
            start = end;
        }
        let mut wallets: Vec<WalletId> = requests.iter().flat_map(|r| r.wallets()).collect();
        wallets.sort_unstable();
        wallets.dedup();
        Self {
            requests,
            atomic,
            wallets,
            events,
            citus,
        }
    }
}

/// Whether a batch looks up its ids and its holds before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Decide as if no id were stored and every hold this instance placed were still
    /// pending; the insert reports any id that is stored, the update any hold that is not.
    Skip,
    /// Look the batch's ids and holds up right after the locks, and decide on what is stored.
    First,
}

/// What a batch is decided on.
struct Basis {
    /// The funds of the wallets that existed before the batch.
    funds: HashMap<WalletId, Funds>,
    /// The same in the order of their ids, when they are remembered rather than locked and
    /// read in this transaction.
    remembered: Option<Vec<(WalletId, Funds)>>,
    /// What is stored under the batch's ids, when they were looked up.
    stored: HashMap<OperationId, Record>,
    /// The holds the batch's decisions name.
    holds: HashMap<OperationId, HoldRecord>,
    /// Wallets the batch created for its deposits.
    created: HashSet<WalletId>,
}

impl Basis {
    /// From memory alone: the remembered funds of every wallet of the batch and every hold
    /// placed through this instance; `None` if one of them is not remembered.
    fn remembered(remembered: &Remembered, work: &Work<'_>, placed: &Placed) -> Option<Self> {
        let remembered = remembered.all(&work.wallets)?;
        let (holds, unknown_holds) = placed_holds(&work.requests, placed, Lookup::Skip);
        unknown_holds.is_empty().then(|| Self {
            funds: remembered.iter().copied().collect(),
            remembered: Some(remembered),
            stored: HashMap::new(),
            holds,
            created: HashSet::new(),
        })
    }

    /// Inside the batch's transaction: locks its wallets and reads their funds, looks up what
    /// `lookup` says, reads the holds this instance does not remember, and creates the
    /// wallets the batch's deposits are the first of.
    async fn read(
        tx: &mut Transaction<'_, Postgres>,
        work: &Work<'_>,
        lookup: Lookup,
        placed: &Placed,
    ) -> StoreResult<Self> {
        let requests = &work.requests;
        // Locked in ascending id order (on Citus shard by shard), whichever shard owns them,
        // so batches from any number of writers and service instances cannot deadlock.
        let mut funds: HashMap<_, _> = batch::lock_wallets(tx, &work.wallets, work.citus).await?;

        // Looked up after the locks: another writer that committed one of these ids on one
        // of these wallets has finished by now, so its record is visible here. The same goes
        // for holds: one changes only under its source's lock, which this batch now holds.
        let stored = match lookup {
            Lookup::First => find_stored(tx, requests).await?,
            Lookup::Skip => HashMap::new(),
        };
        let (mut holds, unknown_holds) = placed_holds(requests, placed, lookup);
        if !unknown_holds.is_empty() {
            holds.extend(batch::find_holds(tx, &unknown_holds).await?);
        }

        // A deposit to a missing wallet creates it, unless its id is already taken: a
        // replay, a reused key, or a repeat of an earlier request in this batch.
        let mut seen = HashSet::new();
        let mut first_deposits: Vec<WalletId> = requests
            .iter()
            .filter(|r| {
                r.id()
                    .is_some_and(|id| seen.insert(id) && !stored.contains_key(&id))
            })
            .filter_map(|r| match r {
                Request::Operation(op) if op.kind == OperationKind::Deposit => Some(op.wallet_id),
                _ => None,
            })
            .filter(|wallet| !funds.contains_key(wallet))
            .collect();
        let mut created = HashSet::new();
        if !first_deposits.is_empty() {
            first_deposits.sort_unstable();
            first_deposits.dedup();
            created = batch::create_wallets(tx, &first_deposits).await?;
            // Wallets this batch created come into being at their first deposit (the plan
            // decides that); the rest were created meanwhile by another transaction and are
            // locked like any existing wallet.
            first_deposits.retain(|id| !created.contains(id));
            funds.extend(batch::lock_wallets(tx, &first_deposits, work.citus).await?);
        }
        Ok(Self {
            funds,
            remembered: None,
            stored,
            holds,
            created,
        })
    }
}

/// The holds the batch's decisions name that this instance remembers (none with
/// `Lookup::First`), and the ids of the others.
fn placed_holds(
    requests: &[&Request],
    placed: &Placed,
    lookup: Lookup,
) -> (HashMap<OperationId, HoldRecord>, Vec<OperationId>) {
    let mut holds = HashMap::new();
    let mut unknown = Vec::new();
    for request in requests {
        let Request::Hold(decision) = request else {
            continue;
        };
        match placed.get(decision.hold).filter(|_| lookup == Lookup::Skip) {
            Some(hold) => {
                holds.insert(hold.id, hold);
            }
            None => unknown.push(decision.hold),
        }
    }
    (holds, unknown)
}

/// A committed batch: its verdicts, and the funds it left in the wallets it changed.
struct Decided {
    verdicts: Verdicts,
    changed: Vec<(WalletId, Funds)>,
}

impl Decided {
    /// The funds of every wallet the batch decided on, as it left them.
    fn funds(&self, basis: &Basis) -> impl Iterator<Item = (WalletId, Funds)> {
        basis
            .funds
            .iter()
            .map(|(&id, &funds)| (id, funds))
            .chain(self.changed.iter().copied())
    }
}

/// Decides the batch on `basis`, and the statement that writes it (`None`: it writes
/// nothing). `None` when, without a lookup, some request was refused: it may have been
/// refused only because of what was not looked up.
fn decide(work: &Work<'_>, basis: &Basis, lookup: Lookup) -> Option<(Decided, Option<Statement>)> {
    let requests = &work.requests;
    // PostgreSQL keeps microseconds: a record's time is cut to that precision now, so the
    // first answer, its replays and its reads all show the same instant.
    let now = chrono::Utc::now().trunc_subsecs(6);
    let plan = plan(
        requests.iter().copied(),
        &work.atomic,
        &basis.funds,
        &basis.stored,
        &basis.holds,
        now,
    );
    // Without a lookup, a stored id shows up only where a record is inserted. A request
    // refused without one (a wallet not found) may carry a reused id, which must be
    // reported as such; a decision about a remembered hold may have been refused only
    // because the hold is no longer what this instance remembers: decide again with the
    // lookup.
    if lookup == Lookup::Skip && plan.verdicts.iter().any(Result::is_err) {
        return None;
    }
    for (request, verdict) in requests.iter().zip(&plan.verdicts) {
        if verdict == &Err(LedgerError::Internal) {
            tracing::error!(
                ?request,
                "the stored funds and holds disagree about this request"
            );
        }
    }
    let mut writes = batch::Writes::default();
    // A wallet created for a deposit that was not stored (its atomic batch failed) goes
    // again: nothing of that batch may remain.
    writes.drop_wallets(basis.created.iter().copied().filter(|wallet| {
        plan.funds
            .binary_search_by_key(wallet, |(id, _)| *id)
            .is_err()
    }));
    for change in &plan.changes {
        match change {
            Change::Decided(i) => {
                let Ok(outcome) = &plan.verdicts[*i] else {
                    continue;
                };
                let key = requests[*i].idempotency_key();
                match &outcome.record {
                    Record::Operation(record) => writes.operation(record, key),
                    Record::Transfer(record) => writes.transfer(record, key),
                    Record::Hold(_) => {}
                }
                if let Some(show) = work.events {
                    writes.event(events::of(&outcome.record, show));
                }
            }
            Change::Resolution(entry) => writes.operation(entry, None),
            // Whatever asked for it: a confirmation, a void, an expiry, or any decision
            // about a hold found past its time.
            Change::Resolved(hold) => {
                if let Some(show) = work.events {
                    writes.event(events::of(&Record::Hold(hold.clone()), show));
                }
            }
        }
    }
    for hold in &plan.holds {
        if basis.holds.contains_key(&hold.id) {
            writes.resolved_hold(hold);
        } else {
            writes.new_hold(hold);
        }
    }
    let statement = writes.statement(&plan.funds, basis.remembered.as_deref(), work.citus);
    let decided = Decided {
        verdicts: plan.verdicts,
        changed: plan.funds,
    };
    Some((decided, statement))
}

/// What is stored under the ids the batch's requests would take: their own, and for a
/// transfer the id of its destination's entry. A transfer's source entry (the one named by
/// the transfer's id) stands for the transfer, whose record is read in full.
async fn find_stored(
    tx: &mut Transaction<'_, Postgres>,
    requests: &[&Request],
) -> StoreResult<HashMap<OperationId, Record>> {
    let ids: Vec<OperationId> = requests
        .iter()
        .flat_map(|r| r.id().into_iter().chain(r.incoming_side()))
        .collect();
    let operations = batch::find_operations(tx, &ids).await?;
    let (transfer_sides, operations): (Vec<OperationRecord>, Vec<OperationRecord>) =
        operations.into_values().partition(|record| {
            record.kind == OperationKind::TransferOut
                && record
                    .transfer
                    .is_some_and(|leg| leg.transfer_id == record.id)
        });
    let mut stored: HashMap<_, _> = operations
        .into_iter()
        .map(|record| (record.id, Record::Operation(record)))
        .collect();
    if !transfer_sides.is_empty() {
        let ids: Vec<_> = transfer_sides.iter().map(|record| record.id).collect();
        let transfers = batch::find_transfers(tx, &ids).await?;
        stored.extend(
            transfers
                .into_iter()
                .map(|(id, record)| (id, Record::Transfer(record))),
        );
    }
    Ok(stored)
}
