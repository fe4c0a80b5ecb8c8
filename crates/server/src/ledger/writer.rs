//! One shard's writer: drain the queue, commit the batch, answer, repeat.

use super::placed::Placed;
use super::plan::{Change, plan};
use super::remembered::Remembered;
use super::{LedgerError, Outcome, Record, Request};
use crate::domain::{Funds, HoldRecord, OperationId, OperationKind, OperationRecord, WalletId};
use crate::events::{self, ShowRecord};
use crate::store::citus::ShardMap;
use crate::store::{StoreError, StoreResult, batch};
use crate::telemetry::metric;
use chrono::SubsecRound;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
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

pub struct Writer {
    connect: PgConnectOptions,
    connection: Option<PgConnection>,
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
        max_batch: usize,
        placed: Arc<Placed>,
        events: Option<ShowRecord>,
        citus: Option<Arc<ShardMap>>,
    ) -> Self {
        Self {
            connect,
            connection: None,
            max_batch,
            placed,
            events,
            citus,
            remembered: Remembered::default(),
        }
    }

    /// Runs until every sender is gone and the queue is empty.
    ///
    /// Batches form without a timer: while one commit is in flight, new requests queue up,
    /// and the next batch takes all of them. Under light load a batch is a single request.
    /// A transaction takes at most `max_batch` requests, however they came (one job may
    /// carry many), except a single job larger than that, which is never split.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut queued = Vec::with_capacity(self.max_batch);
        while queue.recv_many(&mut queued, self.max_batch).await > 0 {
            while !queued.is_empty() {
                let mut requests = 0;
                let fits = queued
                    .iter()
                    .take_while(|job| {
                        requests += job.requests.len();
                        requests <= self.max_batch
                    })
                    .count()
                    .max(1);
                let mut jobs: Vec<Job> = queued.drain(..fits).collect();
                self.commit(&mut jobs).await;
            }
        }
    }

    /// Commits `jobs` as one transaction and answers each, retrying failures until each
    /// job's deadline. Leaves `jobs` empty.
    async fn commit(&mut self, jobs: &mut Vec<Job>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let now = Instant::now();
            for expired in jobs.extract_if(.., |job| job.deadline <= now) {
                let _ = expired.reply.send(Err(LedgerError::Unavailable));
            }
            let Some(deadline) = jobs.iter().map(|job| job.deadline).min() else {
                return;
            };
            let started = Instant::now();
            match tokio::time::timeout_at(deadline, self.attempt(jobs)).await {
                Ok(Ok(Some(verdicts))) => {
                    metrics::histogram!(metric::LEDGER_COMMIT_DURATION).record(started.elapsed());
                    metrics::histogram!(metric::LEDGER_BATCH_SIZE).record(verdicts.len() as f64);
                    let mut verdicts = verdicts.into_iter();
                    for job in jobs.drain(..) {
                        let mine = verdicts.by_ref().take(job.requests.len()).collect();
                        // The submitter may have gone away; its outcome is stored regardless.
                        let _ = job.reply.send(Ok(mine));
                    }
                    return;
                }
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

    /// Decides and commits the batch. Most batches hold no id that was ever seen before,
    /// resolve holds this instance placed and knows pending, and touch wallets whose funds
    /// this writer remembers: the first attempt looks up nothing and locks nothing first,
    /// and is one statement that checks all that as it writes (see [`Remembered`]). Without
    /// remembered funds, the first transaction locks the wallets but still looks up neither
    /// ids nor holds: its insert finds any id that exists, its update any hold no longer
    /// pending. Whatever attempt finds it was wrong is undone, and the batch decided again
    /// with a lookup first. `None` when even that found an id taken meanwhile.
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
        let work = Work {
            requests: &requests,
            atomic: &atomic,
            events: self.events,
            citus: self.citus.as_deref(),
        };
        // Every wallet the batch touches, a transfer's two included, in ascending id order:
        // the order they are locked in.
        let mut wallets: Vec<WalletId> = requests.iter().flat_map(|r| r.wallets()).collect();
        wallets.sort_unstable();
        wallets.dedup();

        if self.citus.is_none()
            && let Some(basis) = Basis::remembered(&self.remembered, &wallets, &work, &self.placed)
        {
            match decide_and_write(connection, &work, &basis, Lookup::Skip).await? {
                Some(decided) => {
                    self.remembered.commit(decided.funds(&basis));
                    return Ok(Some(decided.verdicts));
                }
                // Most likely funds changed by others (rarer: a reused id, a hold resolved
                // elsewhere).
                None => {
                    metrics::counter!(metric::LEDGER_UNREMEMBERED).increment(1);
                    self.remembered.changed_by_others(&wallets);
                }
            }
        }
        for lookup in [Lookup::Skip, Lookup::First] {
            let mut tx = connection.begin().await?;
            let basis = Basis::read(&mut tx, &work, &wallets, lookup, &self.placed).await?;
            let decided = decide_and_write(&mut tx, &work, &basis, lookup).await?;
            if let Some(decided) = decided {
                tx.commit().await?;
                self.remembered.commit(decided.funds(&basis));
                return Ok(Some(decided.verdicts));
            }
            tx.rollback().await?;
        }
        Ok(None)
    }
}

/// The requests of one transaction, in order, and the ranges of them that succeed together
/// or not at all.
struct Work<'a> {
    requests: &'a [&'a Request],
    atomic: &'a [Range<usize>],
    events: Option<ShowRecord>,
    citus: Option<&'a ShardMap>,
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
    /// From memory alone: the remembered funds of every one of `wallets` and every hold
    /// placed through this instance; `None` if one of them is not remembered.
    fn remembered(
        remembered: &Remembered,
        wallets: &[WalletId],
        work: &Work<'_>,
        placed: &Placed,
    ) -> Option<Self> {
        let remembered = remembered.all(wallets)?;
        let (holds, unknown_holds) = placed_holds(work.requests, placed, Lookup::Skip);
        unknown_holds.is_empty().then(|| Self {
            funds: remembered.iter().copied().collect(),
            remembered: Some(remembered),
            stored: HashMap::new(),
            holds,
            created: HashSet::new(),
        })
    }

    /// Inside the batch's transaction: locks `wallets` and reads their funds, looks up what
    /// `lookup` says, reads the holds this instance does not remember, and creates the
    /// wallets the batch's deposits are the first of.
    async fn read(
        tx: &mut Transaction<'_, Postgres>,
        work: &Work<'_>,
        wallets: &[WalletId],
        lookup: Lookup,
        placed: &Placed,
    ) -> StoreResult<Self> {
        let requests = work.requests;
        // Locked in ascending id order (on Citus shard by shard), whichever shard owns them,
        // so batches from any number of writers and service instances cannot deadlock.
        let mut funds: HashMap<_, _> = batch::lock_wallets(tx, wallets, work.citus).await?;

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

/// Decides the batch on `basis` and writes it. `None` when an id turned out to be stored
/// already, a hold resolved already, or remembered funds changed, although none of it was
/// looked up: nothing the batch did may be committed then (with remembered funds, the
/// statement failed and committed nothing).
async fn decide_and_write(
    conn: &mut PgConnection,
    work: &Work<'_>,
    basis: &Basis,
    lookup: Lookup,
) -> StoreResult<Option<Decided>> {
    let requests = work.requests;
    // PostgreSQL keeps microseconds: a record's time is cut to that precision now, so the
    // first answer, its replays and its reads all show the same instant.
    let now = chrono::Utc::now().trunc_subsecs(6);
    let plan = plan(
        requests.iter().copied(),
        work.atomic,
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
        return Ok(None);
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
    let as_decided = writes
        .write(conn, &plan.funds, basis.remembered.as_deref(), work.citus)
        .await?;
    Ok(as_decided.then_some(Decided {
        verdicts: plan.verdicts,
        changed: plan.funds,
    }))
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
