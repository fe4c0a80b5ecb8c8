//! The check of the service's event stream against the run: every write the run saw
//! acknowledged or rejected must have published its events, with the ids and amounts it sent;
//! no event may name a write the run never sent; and each wallet's events must arrive in the
//! order their changes were committed. That order is proved by the money the events carry:
//! walked in arrival order from the wallet's creation, each event must leave exactly what the
//! events before it left plus its own effect. Pure: [`crate::amqp`] hands over what arrived.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::api::{HoldRecord, HoldStatus, OperationRecord, OperationStatus, TransferRecord};
use crate::report::Percentiles;
use crate::stats;
use crate::verify::{Expected, hold_end, hold_mismatch, legs, transfer_mismatch};
use crate::workload::{Settle, Write, WriteKind};

/// Problems described of each kind: the first few tell what went wrong, thousands would bury
/// it; the counts stay exact.
const LISTED: usize = 10;

/// The type of an event, which is also its routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    OperationApplied,
    OperationRejected,
    TransferApplied,
    TransferRejected,
    /// A pending withdrawal or transfer: money held, nothing moved yet.
    HoldPending,
    HoldConfirmed,
    HoldVoided,
    HoldExpired,
}

impl EventKind {
    const ALL: [EventKind; 8] = [
        EventKind::OperationApplied,
        EventKind::OperationRejected,
        EventKind::TransferApplied,
        EventKind::TransferRejected,
        EventKind::HoldPending,
        EventKind::HoldConfirmed,
        EventKind::HoldVoided,
        EventKind::HoldExpired,
    ];

    /// As the service names it.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::OperationApplied => "operation.applied",
            EventKind::OperationRejected => "operation.rejected",
            EventKind::TransferApplied => "transfer.applied",
            EventKind::TransferRejected => "transfer.rejected",
            EventKind::HoldPending => "hold.pending",
            EventKind::HoldConfirmed => "hold.confirmed",
            EventKind::HoldVoided => "hold.voided",
            EventKind::HoldExpired => "hold.expired",
        }
    }

    /// The event that ends a hold settled as `settle`; none for one still pending.
    fn hold_end(settle: Settle) -> Option<Self> {
        match settle {
            Settle::Confirm | Settle::ConfirmPart(_) => Some(EventKind::HoldConfirmed),
            Settle::Void => Some(EventKind::HoldVoided),
            Settle::Expired => Some(EventKind::HoldExpired),
            Settle::Pending => None,
        }
    }
}

impl FromStr for EventKind {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| anyhow!("unknown event type `{name}`"))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `data` of an event: the record exactly as the HTTP API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Operation(OperationRecord),
    Transfer(TransferRecord),
    Hold(HoldRecord),
}

impl Record {
    /// The event type the record's status makes it: `None` for a status no event carries.
    fn kind(&self) -> Option<EventKind> {
        use EventKind::*;
        match self {
            Record::Operation(record) => match record.status {
                OperationStatus::Applied => Some(OperationApplied),
                OperationStatus::Rejected => Some(OperationRejected),
                _ => None,
            },
            Record::Transfer(record) => match record.status {
                OperationStatus::Applied => Some(TransferApplied),
                OperationStatus::Rejected => Some(TransferRejected),
                _ => None,
            },
            Record::Hold(record) => Some(match record.status {
                HoldStatus::Pending => HoldPending,
                HoldStatus::Confirmed => HoldConfirmed,
                HoldStatus::Voided => HoldVoided,
                HoldStatus::Expired => HoldExpired,
            }),
        }
    }

    /// What the record does to each wallet it names, source first.
    fn steps(&self) -> impl Iterator<Item = Step> + use<> {
        let moved = |status, amount: u64| {
            if status == OperationStatus::Applied {
                i128::from(amount)
            } else {
                0
            }
        };
        let leaves = |balance, available| {
            Some(Position {
                balance: i128::from(balance),
                available: i128::from(available),
            })
        };
        let (first, second) = match self {
            Record::Operation(record) => {
                let delta = match record.status {
                    OperationStatus::Applied => record.operation_type.delta(record.amount),
                    _ => 0,
                };
                let leaves = leaves(record.balance, record.available);
                (Step::new(record.wallet_id, delta, delta, leaves), None)
            }
            Record::Transfer(record) => {
                let amount = moved(record.status, record.amount);
                let from = leaves(record.from_balance, record.from_available);
                let to = leaves(record.to_balance, record.to_available);
                (
                    Step::new(record.from_wallet_id, -amount, -amount, from),
                    Some(Step::new(record.to_wallet_id, amount, amount, to)),
                )
            }
            // A hold record carries no balance: it only moves the chain on.
            Record::Hold(record) => {
                let held = i128::from(record.amount);
                match record.status {
                    HoldStatus::Pending => (Step::new(record.wallet_id, 0, -held, None), None),
                    HoldStatus::Confirmed => {
                        // What is confirmed leaves the balance; the whole hold is released, so
                        // available = balance - held regains what was held beyond that.
                        let confirmed = i128::from(record.confirmed_amount.unwrap_or(0));
                        let source =
                            Step::new(record.wallet_id, -confirmed, held - confirmed, None);
                        let destination = record
                            .to_wallet_id
                            .map(|to| Step::new(to, confirmed, confirmed, None));
                        (source, destination)
                    }
                    HoldStatus::Voided | HoldStatus::Expired => {
                        (Step::new(record.wallet_id, 0, held, None), None)
                    }
                }
            }
        };
        std::iter::once(first).chain(second)
    }
}

/// One event as published: `{"eventId", "type", "occurredAt", "data"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    pub kind: EventKind,
    pub occurred_at: SystemTime,
    pub data: Record,
}

/// An event's body before its `data` is read as the record its type says.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    event_id: Uuid,
    #[serde(rename = "type")]
    kind: &'a str,
    occurred_at: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

impl Event {
    /// Reads a message body.
    pub fn parse(body: &[u8]) -> anyhow::Result<Self> {
        let envelope: Envelope = serde_json::from_slice(body).context("not an event")?;
        let kind: EventKind = envelope.kind.parse()?;
        let occurred_at = humantime::parse_rfc3339(envelope.occurred_at)
            .with_context(|| format!("occurredAt `{}`", envelope.occurred_at))?;
        let data = envelope.data.get();
        let data = match kind {
            EventKind::OperationApplied | EventKind::OperationRejected => {
                serde_json::from_str(data).map(Record::Operation)
            }
            EventKind::TransferApplied | EventKind::TransferRejected => {
                serde_json::from_str(data).map(Record::Transfer)
            }
            _ => serde_json::from_str(data).map(Record::Hold),
        }
        .with_context(|| format!("the data of {kind} event {}", envelope.event_id))?;
        Ok(Event {
            id: envelope.event_id,
            kind,
            occurred_at,
            data,
        })
    }

    /// The id the client chose for the write the event is about: an operation's (a refused
    /// hold's is its hold id too), a transfer's or a hold's.
    pub fn write_id(&self) -> Uuid {
        match &self.data {
            Record::Operation(record) => record.client_id(),
            Record::Transfer(record) => record.transfer_id,
            Record::Hold(record) => record.hold_id,
        }
    }

    /// The wallets the event is about: an event belongs to each of them.
    pub fn wallets(&self) -> impl Iterator<Item = Uuid> + use<> {
        self.data.steps().map(|step| step.wallet)
    }
}

/// An event about one of the run's wallets, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub event: Event,
    /// When the consumer took it, on the wall clock that `occurredAt` is read on.
    pub arrived_at: SystemTime,
    /// How the message's properties contradict its body, if they do.
    pub flaw: Option<String>,
}

/// A count of problems of one kind, the first few of them described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub count: u64,
    pub first: Vec<String>,
}

impl Listing {
    /// Counts one more; describes it while few are described.
    pub fn push(&mut self, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < LISTED {
            self.first.push(describe());
        }
    }
}

/// What the event stream delivered during the run and its grace period.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Events about the run's wallets in arrival order, duplicates included.
    pub arrivals: Vec<Arrival>,
    /// Deliveries of events about other wallets: other traffic on the same exchange.
    pub other_traffic: u64,
    /// Deliveries that are no event as documented.
    pub unreadable: Listing,
    /// Why the consumer stopped before it was asked to, if it did.
    pub failure: Option<String>,
    /// How long the stream was waited for once the balances were verified.
    pub waited: Duration,
}

/// What the run knows of how a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Answered as applied (a payment: its hold placed, then confirmed or voided as asked).
    Acknowledged,
    /// Refused with `409 INSUFFICIENT_FUNDS` and stored as rejected.
    Rejected,
    /// No settling answer (a timeout, a `503`, a broken connection): it may or may not have
    /// been committed, so its events may or may not exist.
    Unknown,
}

impl Fate {
    /// The events `write` must have published if it ended this way: none when that is
    /// unknown.
    fn required(self, write: &Write) -> impl Iterator<Item = EventKind> + use<> {
        use EventKind::*;
        let events = match (self, write.kind) {
            (Fate::Unknown, _) => [None, None],
            (Fate::Rejected, WriteKind::Transfer { .. }) => [Some(TransferRejected), None],
            // A withdrawal, or a payment whose hold was refused: an operation, never held.
            (Fate::Rejected, _) => [Some(OperationRejected), None],
            (Fate::Acknowledged, WriteKind::Deposit { .. } | WriteKind::Withdraw { .. }) => {
                [Some(OperationApplied), None]
            }
            (Fate::Acknowledged, WriteKind::Transfer { .. }) => [Some(TransferApplied), None],
            (Fate::Acknowledged, WriteKind::Capture { settle, .. }) => {
                [Some(HoldPending), EventKind::hold_end(settle)]
            }
        };
        events.into_iter().flatten()
    }

    /// Whether `write`, having ended this way, may have published an event of `kind`: one it
    /// must have published, or for an unknown ending, any event of its kind of write.
    fn allows(self, write: &Write, kind: EventKind) -> bool {
        use EventKind::*;
        if self != Fate::Unknown {
            return self.required(write).any(|required| required == kind);
        }
        let possible: &[EventKind] = match write.kind {
            WriteKind::Deposit { .. } | WriteKind::Withdraw { .. } => {
                &[OperationApplied, OperationRejected]
            }
            WriteKind::Transfer { .. } => &[TransferApplied, TransferRejected],
            WriteKind::Capture { .. } => &[
                OperationRejected,
                HoldPending,
                HoldConfirmed,
                HoldVoided,
                HoldExpired,
            ],
        };
        possible.contains(&kind)
    }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fate::Acknowledged => "acknowledged",
            Fate::Rejected => "rejected",
            Fate::Unknown => "of unknown outcome",
        })
    }
}

/// What the event stream must show: every write the run sent, by its id, with what the run
/// saw of its ending, and the run's wallets, whose events alone concern it.
#[derive(Debug, Clone)]
pub struct Expectation {
    wallets: Vec<Uuid>,
    sent: HashMap<Uuid, (Write, Fate)>,
}

impl Expectation {
    /// From the run's answers: `acknowledged` (the setup's funding included), `rejected`
    /// and `unsettled` writes, on `wallets` (indexed as the writes name them).
    pub fn new(
        wallets: &[Uuid],
        acknowledged: &[Write],
        rejected: &[Write],
        unsettled: &[Write],
    ) -> Self {
        let sent = [
            (acknowledged, Fate::Acknowledged),
            (rejected, Fate::Rejected),
            (unsettled, Fate::Unknown),
        ]
        .into_iter()
        .flat_map(|(writes, fate)| writes.iter().map(move |write| (write.id, (*write, fate))))
        .collect();
        Expectation {
            wallets: wallets.to_vec(),
            sent,
        }
    }

    /// Every event that must arrive, named by its write's id and its type.
    pub fn required(&self) -> impl Iterator<Item = (Uuid, EventKind)> + '_ {
        self.sent
            .values()
            .flat_map(|(write, fate)| fate.required(write).map(move |kind| (write.id, kind)))
    }

    /// The run's wallets.
    pub fn wallets(&self) -> &[Uuid] {
        &self.wallets
    }

    /// How the record of an event about `write` differs from what was sent, if it does.
    fn mismatch(&self, write: &Write, data: &Record) -> Option<String> {
        let wallet = |index: u32| self.wallets[index as usize];
        match (data, write.kind) {
            (Record::Operation(record), _) => {
                let leg = legs(write).next().expect("every write has a first side");
                Expected::new(write, leg, &self.wallets).mismatch(record)
            }
            (Record::Transfer(record), WriteKind::Transfer { from, to }) => {
                transfer_mismatch((wallet(from), wallet(to)), write, record)
            }
            (
                Record::Hold(record),
                WriteKind::Capture {
                    wallet: held,
                    settle,
                },
            ) => match hold_end(record) {
                Ok(end) => hold_mismatch(wallet(held), write, settle, record, end),
                Err(error) => Some(error.to_string()),
            },
            // `Fate::allows` keeps transfers and holds to writes of their own kind.
            _ => Some(format!("write {} is of another kind", write.id)),
        }
    }
}

/// A wallet's money as its events so far leave it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    balance: i128,
    available: i128,
}

/// What an event does to one wallet: the change it makes, and the money it says it leaves,
/// when it carries that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    wallet: Uuid,
    balance: i128,
    available: i128,
    leaves: Option<Position>,
}

impl Step {
    fn new(wallet: Uuid, balance: i128, available: i128, leaves: Option<Position>) -> Self {
        Step {
            wallet,
            balance,
            available,
            leaves,
        }
    }
}

/// What the check of the event stream found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Deliveries of events about the run's wallets, duplicates included.
    pub received: u64,
    /// Deliveries of an event already received (the same `eventId`): at least once allows
    /// them, so they are counted, not failed.
    pub duplicates: u64,
    /// Events that the acknowledged and rejected writes must have published.
    pub expected: u64,
    /// Of those, the ones that never arrived.
    pub missing: u64,
    /// Events naming a write the run never sent, of a type its ending cannot publish, or
    /// published twice under different event ids.
    pub unexpected: u64,
    /// Events whose record differs from the write it names, or whose status contradicts its
    /// type.
    pub mismatched: u64,
    /// Events whose balance or available amount disagrees with the wallet's earlier events:
    /// an event before it was lost or arrived after it.
    pub out_of_order: u64,
    /// Events whose message properties contradict the body: the routing key not the type,
    /// `message_id` not the event id, or a content type other than JSON.
    pub malformed: u64,
    /// Deliveries of events about other wallets, ignored.
    pub other_traffic: u64,
    /// Deliveries that are no event as documented: ignored, as they name no wallet.
    pub unreadable: u64,
    /// From `occurredAt` to arrival at the consumer, over each event's first delivery. The
    /// consumer shares the load generator's threads, so a saturated generator adds to it.
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// How long the stream was waited for once the balances were verified (it was consumed
    /// all along): until every expected event had arrived, `--events-grace` at most.
    pub waited_seconds: f64,
    /// Why the consumer stopped before it was asked to, if it did.
    pub failure: Option<String>,
    /// The first few of each kind of problem.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Why the stream fails the run, if it does: events missing, unexpected, mismatched, out
    /// of order or malformed, or a consumer that stopped on its own.
    pub fn failures(&self) -> Vec<String> {
        let counts = [
            (self.missing, "missing"),
            (self.unexpected, "unexpected"),
            (self.mismatched, "mismatched"),
            (self.out_of_order, "out of order"),
            (self.malformed, "malformed"),
        ];
        let mut failures: Vec<String> = counts
            .into_iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!("{count} events {what}"))
            .collect();
        if self.failure.is_some() {
            failures.push("the event consumer failed".to_owned());
        }
        failures
    }
}

/// Checks what the stream delivered against what the run expected of it.
pub fn check(expected: &Expectation, received: &Received) -> Verdict {
    let mut verdict = Verdict {
        received: received.arrivals.len() as u64,
        other_traffic: received.other_traffic,
        unreadable: received.unreadable.count,
        waited_seconds: received.waited.as_secs_f64(),
        failure: received.failure.clone(),
        ..Verdict::default()
    };

    // At least once: the first delivery of each event counts, in arrival order.
    let mut ids = HashSet::with_capacity(received.arrivals.len());
    let first: Vec<&Arrival> = received
        .arrivals
        .iter()
        .filter(|arrival| ids.insert(arrival.event.id))
        .collect();
    verdict.duplicates = verdict.received - first.len() as u64;

    let mut lag = stats::histogram::<u64>(3);
    for arrival in &first {
        let lag_micros = arrival
            .arrived_at
            .duration_since(arrival.event.occurred_at)
            .unwrap_or_default()
            .as_micros();
        lag.saturating_record(u64::try_from(lag_micros).unwrap_or(u64::MAX));
    }
    let lag = Percentiles::of(&lag);
    (verdict.lag_p50_ms, verdict.lag_p99_ms, verdict.lag_max_ms) = (lag.p50, lag.p99, lag.max);

    // Each event against the write it names.
    let mut unexpected = Listing::default();
    let mut mismatched = Listing::default();
    let mut malformed = Listing::default();
    let mut seen: HashMap<(Uuid, EventKind), Uuid> = HashMap::with_capacity(first.len());
    for arrival in &first {
        let event = &arrival.event;
        let (id, kind) = (event.write_id(), event.kind);
        let describe = || format!("event {} ({kind} of {id})", event.id);
        if let Some(flaw) = &arrival.flaw {
            malformed.push(|| format!("{}: {flaw}", describe()));
        }
        if event.data.kind() != Some(kind) {
            mismatched.push(|| format!("{}: its record's status contradicts its type", describe()));
        }
        if let Some(earlier) = seen.insert((id, kind), event.id) {
            unexpected.push(|| format!("{}: a second one, after event {earlier}", describe()));
            continue;
        }
        match expected.sent.get(&id) {
            None => unexpected.push(|| format!("{}: the run never sent {id}", describe())),
            Some((write, fate)) if !fate.allows(write, kind) => {
                unexpected.push(|| format!("{}: the write was {fate}", describe()));
            }
            Some((write, _)) => {
                if let Some(difference) = expected.mismatch(write, &event.data) {
                    mismatched.push(|| format!("{}: {difference}", describe()));
                }
            }
        }
    }

    let mut missing = Listing::default();
    for (id, kind) in expected.required() {
        verdict.expected += 1;
        if !seen.contains_key(&(id, kind)) {
            let fate = expected.sent[&id].1;
            missing.push(|| format!("no {kind} event for write {id}, which was {fate}"));
        }
    }

    let out_of_order = walk(expected.wallets(), &first);

    verdict.missing = missing.count;
    verdict.unexpected = unexpected.count;
    verdict.mismatched = mismatched.count;
    verdict.out_of_order = out_of_order.count;
    verdict.malformed = malformed.count;
    for (what, listing) in [
        ("missing", &missing),
        ("unexpected", &unexpected),
        ("mismatched", &mismatched),
        ("out of order", &out_of_order),
        ("malformed", &malformed),
        ("unreadable (ignored)", &received.unreadable),
    ] {
        verdict
            .problems
            .extend(listing.first.iter().map(|line| format!("{what}: {line}")));
        if listing.count > listing.first.len() as u64 {
            let more = listing.count - listing.first.len() as u64;
            verdict
                .problems
                .push(format!("{what}: ... and {more} more"));
        }
    }
    verdict
}

/// Walks each of the run's wallets through its events, first deliveries in arrival order,
/// from nothing (the run created them): every event that carries the wallet's money must
/// carry what the events before it left plus its own effect. After a break the walk goes on
/// from what the event carries, so one lost or late event is one break, not a cascade.
fn walk(wallets: &[Uuid], arrivals: &[&Arrival]) -> Listing {
    let mut positions: HashMap<Uuid, Position> = wallets
        .iter()
        .map(|&wallet| (wallet, Position::default()))
        .collect();
    let mut breaks = Listing::default();
    for arrival in arrivals {
        let event = &arrival.event;
        for step in event.data.steps() {
            let Some(position) = positions.get_mut(&step.wallet) else {
                continue;
            };
            let after = Position {
                balance: position.balance + step.balance,
                available: position.available + step.available,
            };
            *position = match step.leaves {
                Some(leaves) if leaves != after => {
                    breaks.push(|| {
                        format!(
                            "wallet {}: event {} ({} of {}) leaves balance {}, available {}; \
                             the events before it and its own effect leave balance {}, \
                             available {}",
                            step.wallet,
                            event.id,
                            event.kind,
                            event.write_id(),
                            leaves.balance,
                            leaves.available,
                            after.balance,
                            after.available
                        )
                    });
                    leaves
                }
                Some(leaves) => leaves,
                None => after,
            };
        }
    }
    breaks
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "events     {} received ({} duplicates) of {} expected: {} missing, {} unexpected, \
             {} mismatched, {} out of order, {} malformed",
            self.received,
            self.duplicates,
            self.expected,
            self.missing,
            self.unexpected,
            self.mismatched,
            self.out_of_order,
            self.malformed
        )?;
        writeln!(
            f,
            "event lag  ms p50 {:.2}  p99 {:.2}  max {:.2}; waited {:.2} s after verifying; \
             ignored {} of other traffic and {} unreadable",
            self.lag_p50_ms,
            self.lag_p99_ms,
            self.lag_max_ms,
            self.waited_seconds,
            self.other_traffic,
            self.unreadable
        )?;
        if let Some(failure) = &self.failure {
            writeln!(f, "EVENT CONSUMER FAILED {failure}")?;
        }
        for problem in &self.problems {
            writeln!(f, "EVENT {problem}")?;
        }
        if self.failures().is_empty() {
            writeln!(f, "EVENTS COMPLETE AND IN ORDER")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OperationType;

    const W0: Uuid = Uuid::from_u128(0xA0);
    const W1: Uuid = Uuid::from_u128(0xA1);
    /// A wallet of another run.
    const ELSEWHERE: Uuid = Uuid::from_u128(0xEE);
    const WALLETS: [Uuid; 2] = [W0, W1];

    fn write(kind: WriteKind, amount: u64, id: u128) -> Write {
        Write {
            kind,
            amount,
            id: Uuid::from_u128(id),
        }
    }

    fn operation(
        id: u128,
        wallet: Uuid,
        operation_type: OperationType,
        amount: u64,
        status: OperationStatus,
        (balance, available): (i64, i64),
    ) -> Record {
        Record::Operation(OperationRecord {
            operation_id: Uuid::from_u128(id),
            wallet_id: wallet,
            operation_type,
            amount,
            status,
            balance,
            available,
            transfer_id: None,
            counterparty_wallet_id: None,
            hold_id: None,
        })
    }

    fn deposited(id: u128, wallet: Uuid, amount: u64, leaves: (i64, i64)) -> Record {
        use OperationStatus::Applied;
        operation(id, wallet, OperationType::Deposit, amount, Applied, leaves)
    }

    fn withdrawn(id: u128, wallet: Uuid, amount: u64, leaves: (i64, i64)) -> Record {
        use OperationStatus::Applied;
        operation(id, wallet, OperationType::Withdraw, amount, Applied, leaves)
    }

    fn refused(id: u128, wallet: Uuid, amount: u64, leaves: (i64, i64)) -> Record {
        use OperationStatus::Rejected;
        operation(
            id,
            wallet,
            OperationType::Withdraw,
            amount,
            Rejected,
            leaves,
        )
    }

    fn transferred(
        id: u128,
        (from, to): (Uuid, Uuid),
        amount: u64,
        status: OperationStatus,
        (from_balance, from_available): (i64, i64),
        (to_balance, to_available): (i64, i64),
    ) -> Record {
        Record::Transfer(TransferRecord {
            transfer_id: Uuid::from_u128(id),
            from_wallet_id: from,
            to_wallet_id: to,
            amount,
            status,
            from_balance,
            from_available,
            to_balance,
            to_available,
        })
    }

    fn hold(
        id: u128,
        wallet: Uuid,
        to: Option<Uuid>,
        amount: u64,
        status: HoldStatus,
        confirmed_amount: Option<u64>,
    ) -> Record {
        Record::Hold(HoldRecord {
            hold_id: Uuid::from_u128(id),
            wallet_id: wallet,
            to_wallet_id: to,
            amount,
            status,
            confirmed_amount,
        })
    }

    /// An event about `data`, of the type its status makes it, its id derived from its
    /// write's and its type, 5 ms old when it arrives.
    fn event(data: Record) -> Arrival {
        let kind = data.kind().expect("a status that events carry");
        let occurred_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut event = Event {
            id: Uuid::nil(),
            kind,
            occurred_at,
            data,
        };
        event.id = Uuid::from_u128(event.write_id().as_u128() << 8 | kind as u128);
        Arrival {
            event,
            arrived_at: occurred_at + Duration::from_millis(5),
            flaw: None,
        }
    }

    /// The run: wallet 0 funded with 100; 30 moved to wallet 1; a withdrawal of 500 from
    /// wallet 1 refused; a payment of 20 held on wallet 0 and 15 of it confirmed; a withdrawal
    /// of 5 from wallet 1 whose answer was lost.
    fn expectation() -> Expectation {
        let acknowledged = [
            write(WriteKind::Deposit { wallet: 0 }, 100, 1),
            write(WriteKind::Transfer { from: 0, to: 1 }, 30, 2),
            write(
                WriteKind::Capture {
                    wallet: 0,
                    settle: Settle::ConfirmPart(15),
                },
                20,
                4,
            ),
        ];
        let rejected = [write(WriteKind::Withdraw { wallet: 1 }, 500, 3)];
        let unsettled = [write(WriteKind::Withdraw { wallet: 1 }, 5, 5)];
        Expectation::new(&WALLETS, &acknowledged, &rejected, &unsettled)
    }

    /// The events of [`expectation`]'s run, each wallet's in commit order.
    fn stream() -> Vec<Arrival> {
        use HoldStatus::*;
        use OperationStatus::Applied;
        vec![
            event(deposited(1, W0, 100, (100, 100))),
            event(transferred(2, (W0, W1), 30, Applied, (70, 70), (30, 30))),
            event(refused(3, W1, 500, (30, 30))),
            event(hold(4, W0, None, 20, Pending, None)),
            event(hold(4, W0, None, 20, Confirmed, Some(15))),
            event(withdrawn(5, W1, 5, (25, 25))),
        ]
    }

    fn received(arrivals: Vec<Arrival>) -> Received {
        Received {
            arrivals,
            ..Received::default()
        }
    }

    fn checked(arrivals: Vec<Arrival>) -> Verdict {
        check(&expectation(), &received(arrivals))
    }

    #[test]
    fn complete_stream_in_commit_order_passes() {
        let verdict = checked(stream());
        assert!(verdict.failures().is_empty(), "{verdict}");
        assert_eq!((verdict.received, verdict.duplicates), (6, 0));
        assert_eq!(verdict.expected, 5);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        assert!((verdict.lag_p50_ms - 5.0).abs() < 0.01, "{verdict:?}");
        assert!(verdict.to_string().contains("EVENTS COMPLETE AND IN ORDER"));
    }

    #[test]
    fn acknowledged_write_without_its_event_is_missing() {
        let mut arrivals = stream();
        // The confirmation of the payment never arrives.
        arrivals.remove(4);
        let verdict = checked(arrivals);
        assert_eq!(verdict.missing, 1);
        assert_eq!(
            verdict.problems,
            [format!(
                "missing: no hold.confirmed event for write {}, which was acknowledged",
                Uuid::from_u128(4)
            )]
        );
        assert_eq!(verdict.failures(), ["1 events missing"]);
    }

    #[test]
    fn lost_event_with_money_on_it_breaks_its_wallets_chain_once() {
        let mut arrivals = stream();
        // The setup's deposit lost: the transfer after it cannot leave 70.
        arrivals.remove(0);
        let verdict = checked(arrivals);
        assert_eq!((verdict.missing, verdict.out_of_order), (1, 1));
        assert!(
            verdict.problems[1].contains("leaves balance 70, available 70; the events before it and its own effect leave balance -30, available -30"),
            "{:?}",
            verdict.problems
        );
    }

    #[test]
    fn duplicates_are_counted_not_failed() {
        let mut arrivals = stream();
        arrivals.insert(3, arrivals[1].clone());
        arrivals.push(arrivals[0].clone());
        let verdict = checked(arrivals);
        assert!(verdict.failures().is_empty(), "{verdict}");
        assert_eq!((verdict.received, verdict.duplicates), (8, 2));
    }

    #[test]
    fn one_wallets_events_out_of_commit_order_are_reported() {
        let mut arrivals = stream();
        // Wallet 1's refusal (which saw 30) before the transfer that brought the 30.
        arrivals.swap(1, 2);
        let verdict = checked(arrivals);
        assert_eq!(verdict.out_of_order, 2, "{:?}", verdict.problems);
        assert_eq!((verdict.missing, verdict.unexpected), (0, 0));
        assert!(
            verdict.problems[0].starts_with(&format!("out of order: wallet {W1}: event")),
            "{:?}",
            verdict.problems
        );
        assert_eq!(verdict.failures(), ["2 events out of order"]);
    }

    #[test]
    fn events_of_different_wallets_may_interleave_in_any_order() {
        let mut arrivals = stream();
        // Wallet 1's last withdrawal before wallet 0's payment: each wallet keeps its order.
        let last = arrivals.pop().unwrap();
        arrivals.insert(3, last);
        assert!(checked(arrivals).failures().is_empty());
    }

    #[test]
    fn hold_release_and_partial_confirmation_move_available_and_balance() {
        use HoldStatus::*;
        // 100 in; hold 20 (available 80); confirm 15 (balance 85, available 85); hold 10 and
        // void it; hold 7 and let it expire; then a withdrawal of 5 sees 80.
        let steps = [
            deposited(1, W0, 100, (100, 100)),
            hold(4, W0, None, 20, Pending, None),
            hold(4, W0, None, 20, Confirmed, Some(15)),
            hold(6, W0, None, 10, Pending, None),
            hold(6, W0, None, 10, Voided, None),
            hold(7, W0, None, 7, Pending, None),
            hold(7, W0, None, 7, Expired, None),
            withdrawn(8, W0, 5, (80, 80)),
        ];
        let arrivals: Vec<_> = steps.into_iter().map(event).collect();
        let first: Vec<&Arrival> = arrivals.iter().collect();
        assert_eq!(walk(&WALLETS, &first).count, 0);
        // Had the void been lost, the withdrawal would see 10 less available than it says.
        let without_void: Vec<&Arrival> = arrivals
            .iter()
            .enumerate()
            .filter_map(|(n, arrival)| (n != 4).then_some(arrival))
            .collect();
        let breaks = walk(&WALLETS, &without_void);
        assert_eq!(breaks.count, 1);
        assert!(
            breaks.first[0].contains("balance 80, available 70"),
            "{breaks:?}"
        );
    }

    #[test]
    fn confirmed_transfer_hold_credits_its_destination() {
        use HoldStatus::*;
        use OperationStatus::Applied;
        let steps = [
            deposited(1, W0, 100, (100, 100)),
            hold(9, W0, Some(W1), 40, Pending, None),
            hold(9, W0, Some(W1), 40, Confirmed, Some(40)),
            transferred(10, (W1, W0), 40, Applied, (0, 0), (100, 100)),
        ];
        let arrivals: Vec<_> = steps.into_iter().map(event).collect();
        let first: Vec<&Arrival> = arrivals.iter().collect();
        assert_eq!(walk(&WALLETS, &first), Listing::default());
        let before_confirmation = [first[0], first[1], first[3]];
        let breaks = walk(&WALLETS, &before_confirmation);
        assert_eq!(breaks.count, 2, "{breaks:?}");
    }

    #[test]
    fn rejected_transfer_must_leave_both_wallets_as_they_were() {
        use OperationStatus::*;
        let mut arrivals = stream();
        arrivals.insert(
            2,
            event(transferred(11, (W1, W0), 31, Rejected, (30, 30), (71, 70))),
        );
        let mut expectation = expectation();
        let refused = write(WriteKind::Transfer { from: 1, to: 0 }, 31, 11);
        expectation
            .sent
            .insert(refused.id, (refused, Fate::Rejected));
        let verdict = check(&expectation, &received(arrivals));
        // Wallet 0 had 70: the rejection says 71.
        assert_eq!(verdict.failures(), ["1 events out of order"]);
        assert!(
            verdict.problems[0].contains(&format!("wallet {W0}")),
            "{:?}",
            verdict.problems
        );
    }

    #[test]
    fn unknown_outcome_may_publish_or_not() {
        let mut arrivals = stream();
        arrivals.pop();
        assert!(checked(arrivals).failures().is_empty());
        // Any type its kind of write can have, but no other.
        let mut arrivals = stream();
        let last = arrivals.len() - 1;
        arrivals[last] = event(refused(5, W1, 5, (30, 30)));
        assert!(checked(arrivals).failures().is_empty());
        let mut arrivals = stream();
        arrivals[last] = event(hold(5, W1, None, 5, HoldStatus::Pending, None));
        let verdict = checked(arrivals);
        assert_eq!(verdict.unexpected, 1, "{:?}", verdict.problems);
    }

    #[test]
    fn event_of_a_write_never_sent_is_unexpected() {
        let mut arrivals = stream();
        arrivals.push(event(deposited(99, W1, 1, (26, 26))));
        let verdict = checked(arrivals);
        assert_eq!(verdict.unexpected, 1);
        assert_eq!(
            verdict.problems,
            [format!(
                "unexpected: event {} (operation.applied of {id}): the run never sent {id}",
                Uuid::from_u128(99 << 8),
                id = Uuid::from_u128(99)
            )]
        );
    }

    #[test]
    fn event_of_a_type_the_outcome_cannot_publish_is_unexpected() {
        use OperationStatus::*;
        let mut arrivals = stream();
        // The refused withdrawal published as applied: unexpected, and its refusal missing.
        arrivals[2] = event(withdrawn(3, W1, 500, (30, 30)));
        let verdict = checked(arrivals);
        assert_eq!((verdict.unexpected, verdict.missing), (1, 1));
        assert!(
            verdict
                .problems
                .iter()
                .any(|p| p.contains("the write was rejected"))
        );
        // The applied transfer published a second time under another event id.
        let mut arrivals = stream();
        let mut again = event(transferred(2, (W0, W1), 30, Applied, (70, 70), (30, 30)));
        again.event.id = Uuid::from_u128(12345);
        arrivals.insert(2, again);
        let verdict = checked(arrivals);
        assert_eq!(verdict.unexpected, 1, "{:?}", verdict.problems);
        assert!(verdict.problems[0].contains("a second one"));
    }

    #[test]
    fn record_other_than_the_write_sent_is_mismatched() {
        use OperationStatus::*;
        let mut arrivals = stream();
        arrivals[1] = event(transferred(2, (W0, W1), 31, Applied, (69, 69), (31, 31)));
        arrivals[4] = event(hold(4, W0, None, 20, HoldStatus::Confirmed, Some(20)));
        let verdict = checked(arrivals);
        assert_eq!(verdict.mismatched, 2, "{:?}", verdict.problems);
        assert!(verdict.problems[0].contains("stored as 31 from"));
        assert!(verdict.problems[1].contains("ended as Confirm"));
        // The transfer's own money is consistent with its amount; wallet 1's refusal after it
        // saw 30, not the 31 the transfer says it left.
        assert_eq!(verdict.out_of_order, 1, "{:?}", verdict.problems);
    }

    #[test]
    fn status_that_contradicts_the_type_is_mismatched() {
        let mut arrivals = stream();
        arrivals[0].event.kind = EventKind::OperationRejected;
        let verdict = checked(arrivals);
        assert!(verdict.mismatched >= 1, "{:?}", verdict.problems);
        assert!(
            verdict
                .problems
                .iter()
                .any(|p| p.contains("contradicts its type"))
        );
    }

    #[test]
    fn flawed_properties_are_malformed() {
        let mut arrivals = stream();
        arrivals[0].flaw = Some("routing key `x`".to_owned());
        let verdict = checked(arrivals);
        assert_eq!(verdict.failures(), ["1 events malformed"]);
    }

    #[test]
    fn events_of_other_wallets_are_outside_the_chain() {
        use OperationStatus::*;
        let wallets: Vec<Uuid> = event(transferred(2, (W0, ELSEWHERE), 1, Applied, (0, 0), (1, 1)))
            .event
            .wallets()
            .collect();
        assert_eq!(wallets, [W0, ELSEWHERE]);
        let arrivals = [event(deposited(1, ELSEWHERE, 5, (12345, 12345)))];
        let first: Vec<&Arrival> = arrivals.iter().collect();
        assert_eq!(walk(&WALLETS, &first).count, 0);
    }

    #[test]
    fn problems_are_listed_up_to_a_few_and_counted_in_full() {
        let verdict = checked(Vec::new());
        assert_eq!(verdict.missing, 5);
        let mut many = Listing::default();
        for n in 0..25 {
            many.push(|| n.to_string());
        }
        assert_eq!((many.count, many.first.len()), (25, LISTED));
        let unreadable = Received {
            unreadable: many,
            ..received(stream())
        };
        let verdict = check(&expectation(), &unreadable);
        assert!(verdict.failures().is_empty());
        assert_eq!(verdict.unreadable, 25);
        assert_eq!(verdict.problems.len(), LISTED + 1);
        assert_eq!(
            verdict.problems.last().unwrap(),
            "unreadable (ignored): ... and 15 more"
        );
    }

    #[test]
    fn consumer_failure_fails_the_stream() {
        let failed = Received {
            failure: Some("connection reset".to_owned()),
            ..received(stream())
        };
        let verdict = check(&expectation(), &failed);
        assert_eq!(verdict.failures(), ["the event consumer failed"]);
        assert!(
            verdict
                .to_string()
                .contains("EVENT CONSUMER FAILED connection reset")
        );
    }

    #[test]
    fn verdict_serialises_with_the_documented_field_names() {
        let json = serde_json::to_value(checked(stream())).unwrap();
        for field in [
            "received",
            "duplicates",
            "expected",
            "missing",
            "unexpected",
            "mismatched",
            "outOfOrder",
            "malformed",
            "otherTraffic",
            "unreadable",
            "lagP50Ms",
            "lagP99Ms",
            "lagMaxMs",
            "waitedSeconds",
            "problems",
        ] {
            assert!(json.get(field).is_some(), "no {field} in {json}");
        }
    }

    const OPERATION_APPLIED: &str = r#"{"eventId":"7d0c7c1e-2a8f-5a55-9a4e-0d7c3c1b2a10","type":"operation.applied","occurredAt":"2026-01-01T00:00:00.123456Z","data":{"operationId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a10","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","operationType":"DEPOSIT","amount":5,"status":"APPLIED","balance":105,"available":105,"createdAt":"2026-01-01T00:00:00.123456Z"}}"#;
    const HOLD_CONFIRMED: &str = r#"{"eventId":"7d0c7c1e-2a8f-5a55-9a4e-0d7c3c1b2a13","type":"hold.confirmed","occurredAt":"2026-01-01T00:00:01Z","data":{"holdId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a13","holdType":"TRANSFER","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","toWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e","amount":40,"confirmedAmount":25,"status":"CONFIRMED","createdAt":"2026-01-01T00:00:00Z","resolvedAt":"2026-01-01T00:00:01Z"}}"#;

    #[test]
    fn events_parse_from_the_documented_shape() {
        let event = Event::parse(OPERATION_APPLIED.as_bytes()).unwrap();
        assert_eq!(event.kind, EventKind::OperationApplied);
        assert_eq!(
            event.write_id().to_string(),
            "6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a10"
        );
        let since_epoch = event.occurred_at.duration_since(SystemTime::UNIX_EPOCH);
        assert_eq!(since_epoch.unwrap().subsec_micros(), 123_456);
        assert_eq!(event.data.kind(), Some(event.kind));

        let event = Event::parse(HOLD_CONFIRMED.as_bytes()).unwrap();
        let Record::Hold(hold) = &event.data else {
            panic!("a hold event carries a hold: {event:?}");
        };
        assert_eq!((hold.amount, hold.confirmed_amount), (40, Some(25)));
        let wallets: Vec<String> = event.wallets().map(|w| w.to_string()).collect();
        assert_eq!(
            wallets,
            [
                "0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d",
                "0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e"
            ]
        );
    }

    #[test]
    fn unknown_types_and_foreign_bodies_are_unreadable() {
        let renamed = OPERATION_APPLIED.replace("operation.applied", "wallet.created");
        let error = Event::parse(renamed.as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("unknown event type"),
            "{error:#}"
        );
        assert!(Event::parse(b"not json").is_err());
        // An operation's type with a hold's data.
        let swapped = HOLD_CONFIRMED.replace("hold.confirmed", "operation.applied");
        assert!(Event::parse(swapped.as_bytes()).is_err());
        let undated =
            OPERATION_APPLIED.replace("2026-01-01T00:00:00.123456Z\",\"data", "soon\",\"data");
        assert!(Event::parse(undated.as_bytes()).is_err());
    }

    #[test]
    fn every_type_reads_back_from_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(kind.name().parse::<EventKind>().unwrap(), kind);
        }
    }
}
