//! What a runner remembers about the requests it made. One `Recorder` per runner task, merged at
//! the end, so recording is a few array increments and a histogram update, with no locks.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::api::{Answer, Outcome};
use crate::workload::{Op, Write, WriteKind};

/// Latencies are recorded in microseconds, up to an hour; longer ones saturate.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;
/// Highest HTTP status code counted individually (the HTTP grammar allows three digits).
const STATUS_SLOTS: usize = 1000;
/// How far behind schedule a send may be before it counts as late: well above the 1 ms
/// resolution of the runtime's timer, well below any latency worth reporting.
pub const LATE: Duration = Duration::from_millis(5);
/// Names of the request kinds, in the order of [`Recorder::latency_by_kind`]; a `capture` is a
/// payment, its hold and its confirmation or void timed together, a `batch` a whole batch.
pub const KINDS: [&str; 7] = [
    "deposit", "withdraw", "transfer", "capture", "read", "live", "batch",
];
/// Index of payments in [`KINDS`].
pub const CAPTURE: usize = 3;

/// A histogram of microseconds up to an hour.
pub fn histogram<T: hdrhistogram::Counter>(significant_digits: u8) -> Histogram<T> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, significant_digits)
        .expect("static histogram bounds are valid")
}

/// Everything measured during one second of the run (by completion time).
pub struct Second {
    /// Requests answered (or failed) in this second.
    pub completed: u64,
    /// Of those, answered as the API documents.
    pub ok: u64,
    /// Latency distribution of this second; two significant digits are plenty for a timeline.
    pub latency: Histogram<u32>,
}

impl Second {
    fn new() -> Self {
        Second {
            completed: 0,
            ok: 0,
            latency: histogram(2),
        }
    }
}

/// Counters, latency histograms and the fate of every write of one runner.
pub struct Recorder {
    origin: Instant,
    /// Whole-run latency, three significant digits.
    pub latency: Histogram<u64>,
    /// The same split by request kind, indexed as [`KINDS`]: reads skip the write path, so
    /// mixing them hides where time goes.
    pub latency_by_kind: [Histogram<u64>; KINDS.len()],
    /// Per-second timeline, indexed by seconds since the start of the run.
    pub timeline: Vec<Second>,
    /// Answers by HTTP status code.
    pub statuses: Box<[u64; STATUS_SLOTS]>,
    /// Operations that finished: one per request, a batch's items each.
    pub items: u64,
    /// Of those, answered as the API documents (a batch's items each as if sent alone).
    pub ok_items: u64,
    pub timeouts: u64,
    pub transport_errors: u64,
    /// Writes answered `200 APPLIED` (payments: confirmed or voided as asked): they must all be
    /// in the ledger.
    pub acknowledged: Vec<Write>,
    /// Writes refused with `409 INSUFFICIENT_FUNDS` (payments: their hold). They move no money,
    /// but the server stores them, and its event stream must show them.
    pub rejected: Vec<Write>,
    /// Writes without a settling answer: they must be looked up before verifying.
    pub unsettled: Vec<Write>,
    /// Open loop only: the furthest behind schedule a request was sent.
    pub max_send_lag: Duration,
    /// Open loop only: requests sent more than [`LATE`] behind schedule, because the in-flight
    /// cap was reached or the load generator ran short of CPU.
    pub late_sends: u64,
    /// When the last answer arrived.
    pub last_completion: Option<Instant>,
}

impl Recorder {
    /// An empty recorder; `origin` is the start of the run, shared by all runners so that
    /// their timelines line up.
    pub fn new(origin: Instant) -> Self {
        Recorder {
            origin,
            latency: histogram(3),
            latency_by_kind: KINDS.map(|_| histogram(3)),
            timeline: Vec::new(),
            statuses: Box::new([0; STATUS_SLOTS]),
            items: 0,
            ok_items: 0,
            timeouts: 0,
            transport_errors: 0,
            acknowledged: Vec::new(),
            rejected: Vec::new(),
            unsettled: Vec::new(),
            max_send_lag: Duration::ZERO,
            late_sends: 0,
            last_completion: None,
        }
    }

    /// Records one finished request, and each write it carried as if sent alone. `start` is
    /// when it was *meant* to start (open loop) or was sent (closed loop); `end` is when its
    /// answer was complete.
    pub fn record(&mut self, op: &Op, answer: &Answer, start: Instant, end: Instant) {
        let micros =
            u64::try_from(end.saturating_duration_since(start).as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(micros);
        let kind = match op {
            Op::Write(write) => match write.kind {
                WriteKind::Deposit { .. } => 0,
                WriteKind::Withdraw { .. } => 1,
                WriteKind::Transfer { .. } => 2,
                WriteKind::Capture { .. } => CAPTURE,
            },
            Op::Read { .. } => 4,
            Op::Live => 5,
            Op::Batch(_) => 6,
        };
        self.latency_by_kind[kind].saturating_record(micros);

        let outcome = answer.outcome();
        match outcome.status() {
            Some(status) => self.statuses[usize::from(status).min(STATUS_SLOTS - 1)] += 1,
            None if outcome == Outcome::Timeout => self.timeouts += 1,
            None => self.transport_errors += 1,
        }
        let items = answer.items();
        self.items += items.len() as u64;
        self.ok_items += items.iter().filter(|item| item.is_ok()).count() as u64;
        let writes = op.writes();
        debug_assert!(writes.is_empty() || writes.len() == items.len());
        for (write, item) in writes.iter().zip(items) {
            match item {
                Outcome::Applied => self.acknowledged.push(*write),
                Outcome::Rejected => self.rejected.push(*write),
                _ => self.unsettled.push(*write),
            }
        }

        let second = end.saturating_duration_since(self.origin).as_secs() as usize;
        if self.timeline.len() <= second {
            self.timeline.resize_with(second + 1, Second::new);
        }
        let slot = &mut self.timeline[second];
        slot.completed += 1;
        slot.ok += u64::from(outcome.is_ok());
        slot.latency.saturating_record(micros);
        self.last_completion = self.last_completion.max(Some(end));
    }

    /// Notes how far behind schedule an open-loop request was actually sent.
    pub fn record_send_lag(&mut self, lag: Duration) {
        self.max_send_lag = self.max_send_lag.max(lag);
        self.late_sends += u64::from(lag > LATE);
    }

    /// Folds another runner's recorder into this one.
    pub fn merge(&mut self, other: Recorder) {
        self.latency
            .add(&other.latency)
            .expect("histograms with equal bounds always merge");
        for (mine, theirs) in self.latency_by_kind.iter_mut().zip(&other.latency_by_kind) {
            mine.add(theirs)
                .expect("histograms with equal bounds always merge");
        }
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize_with(other.timeline.len(), Second::new);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(other.timeline) {
            mine.completed += theirs.completed;
            mine.ok += theirs.ok;
            mine.latency
                .add(&theirs.latency)
                .expect("histograms with equal bounds always merge");
        }
        for (mine, theirs) in self.statuses.iter_mut().zip(other.statuses.iter()) {
            *mine += theirs;
        }
        self.items += other.items;
        self.ok_items += other.ok_items;
        self.timeouts += other.timeouts;
        self.transport_errors += other.transport_errors;
        self.acknowledged.extend(other.acknowledged);
        self.rejected.extend(other.rejected);
        self.unsettled.extend(other.unsettled);
        self.max_send_lag = self.max_send_lag.max(other.max_send_lag);
        self.late_sends += other.late_sends;
        self.last_completion = self.last_completion.max(other.last_completion);
    }

    /// Rejected writes of the kinds `of_kind` accepts.
    pub fn rejected_of(&self, of_kind: impl Fn(WriteKind) -> bool) -> u64 {
        self.rejected
            .iter()
            .filter(|write| of_kind(write.kind))
            .count() as u64
    }

    /// Requests that finished, whatever the outcome.
    pub fn completed(&self) -> u64 {
        self.latency.len()
    }

    /// Requests answered as the API documents.
    pub fn ok(&self) -> u64 {
        self.timeline.iter().map(|s| s.ok).sum()
    }

    /// Status codes that were seen, with their counts, in ascending order.
    pub fn status_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(status, count)| (status as u16, *count))
    }

    /// The start of the run.
    pub fn origin(&self) -> Instant {
        self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const DEPOSIT: WriteKind = WriteKind::Deposit { wallet: 0 };
    const WITHDRAW: WriteKind = WriteKind::Withdraw { wallet: 0 };
    const TRANSFER: WriteKind = WriteKind::Transfer { from: 0, to: 1 };
    const CAPTURE: WriteKind = WriteKind::Capture {
        wallet: 0,
        settle: crate::workload::Settle::Confirm,
    };

    fn write(kind: WriteKind) -> Op {
        Op::Write(Write {
            kind,
            amount: 3,
            id: Uuid::nil(),
        })
    }

    #[test]
    fn writes_are_sorted_into_acknowledged_rejected_and_unsettled() {
        let origin = Instant::now();
        let mut recorder = Recorder::new(origin);
        recorder.record(&write(DEPOSIT), &Outcome::Applied.into(), origin, origin);
        recorder.record(&write(WITHDRAW), &Outcome::Rejected.into(), origin, origin);
        recorder.record(&write(DEPOSIT), &Outcome::Other(503).into(), origin, origin);
        recorder.record(&write(DEPOSIT), &Outcome::Timeout.into(), origin, origin);
        recorder.record(&write(TRANSFER), &Outcome::Applied.into(), origin, origin);
        recorder.record(&write(TRANSFER), &Outcome::Rejected.into(), origin, origin);
        recorder.record(&write(TRANSFER), &Outcome::Transport.into(), origin, origin);
        recorder.record(&write(CAPTURE), &Outcome::Applied.into(), origin, origin);
        recorder.record(&write(CAPTURE), &Outcome::Rejected.into(), origin, origin);
        recorder.record(&write(CAPTURE), &Outcome::Other(500).into(), origin, origin);
        recorder.record(
            &Op::Read { wallet: 0 },
            &Outcome::Transport.into(),
            origin,
            origin,
        );
        recorder.record(&Op::Live, &Outcome::Alive.into(), origin, origin);

        assert_eq!(recorder.acknowledged.len(), 3);
        let kinds: Vec<WriteKind> = recorder.rejected.iter().map(|w| w.kind).collect();
        assert_eq!(kinds, [WITHDRAW, TRANSFER, CAPTURE]);
        assert_eq!(
            recorder.rejected_of(|kind| matches!(kind, WriteKind::Transfer { .. })),
            1
        );
        assert_eq!(recorder.unsettled.len(), 4);
        assert_eq!(recorder.timeouts, 1);
        assert_eq!(recorder.transport_errors, 2);
        assert_eq!(
            recorder.status_counts().collect::<Vec<_>>(),
            [(200, 4), (409, 3), (500, 1), (503, 1)]
        );
        assert_eq!(recorder.completed(), 12);
        assert_eq!((recorder.items, recorder.ok_items), (12, 7));
        let by_kind = recorder.latency_by_kind.each_ref().map(|h| h.len());
        assert_eq!(by_kind, [3, 1, 3, 3, 1, 1, 0]);
        assert_eq!(recorder.ok(), 7);
    }

    #[test]
    fn each_item_of_a_batch_is_accounted_for_as_a_write_of_its_own() {
        let origin = Instant::now();
        let mut recorder = Recorder::new(origin);
        let items = [DEPOSIT, WITHDRAW, TRANSFER, TRANSFER, DEPOSIT].map(|kind| Write {
            kind,
            amount: 3,
            id: Uuid::nil(),
        });
        let batch = Op::Batch(items.to_vec());
        let decided = Answer::Batch {
            outcome: Outcome::Decided,
            items: vec![
                Outcome::Applied,
                Outcome::Rejected,
                Outcome::Applied,
                Outcome::Rejected,
                Outcome::Applied,
            ],
        };
        recorder.record(&batch, &decided, origin, origin);
        // One item answered otherwise: the batch is an unexpected answer, the item unsettled.
        let odd = Answer::Batch {
            outcome: Outcome::Other(200),
            items: vec![
                Outcome::Applied,
                Outcome::Applied,
                Outcome::Other(500),
                Outcome::Applied,
                Outcome::Applied,
            ],
        };
        recorder.record(&batch, &odd, origin, origin);
        // No results: every item's effect is unknown.
        let lost = Answer::Batch {
            outcome: Outcome::Timeout,
            items: vec![Outcome::Timeout; 5],
        };
        recorder.record(&batch, &lost, origin, origin);

        assert_eq!(recorder.completed(), 3);
        assert_eq!(recorder.ok(), 1);
        assert_eq!(recorder.status_counts().collect::<Vec<_>>(), [(200, 2)]);
        assert_eq!(recorder.timeouts, 1);
        assert_eq!((recorder.items, recorder.ok_items), (15, 9));
        assert_eq!(recorder.acknowledged.len(), 3 + 4);
        let kinds: Vec<WriteKind> = recorder.rejected.iter().map(|w| w.kind).collect();
        assert_eq!(kinds, [WITHDRAW, TRANSFER]);
        assert_eq!(recorder.unsettled.len(), 1 + 5);
        let by_kind = recorder.latency_by_kind.each_ref().map(|h| h.len());
        assert_eq!(by_kind, [0, 0, 0, 0, 0, 0, 3]);

        let mut merged = Recorder::new(origin);
        merged.record(&Op::Live, &Outcome::Alive.into(), origin, origin);
        merged.merge(recorder);
        assert_eq!((merged.items, merged.ok_items), (16, 10));
    }

    #[test]
    fn timeline_buckets_by_completion_second_and_merge_adds_up() {
        let origin = Instant::now();
        let read = Op::Read { wallet: 0 };
        let mut a = Recorder::new(origin);
        a.record(
            &read,
            &Outcome::Read.into(),
            origin,
            origin + Duration::from_millis(10),
        );
        let mut b = Recorder::new(origin);
        b.record(
            &read,
            &Outcome::Read.into(),
            origin,
            origin + Duration::from_millis(2500),
        );
        b.record_send_lag(Duration::from_millis(6));

        a.merge(b);
        let completed: Vec<u64> = a.timeline.iter().map(|s| s.completed).collect();
        assert_eq!(completed, [1, 0, 1]);
        assert_eq!(a.completed(), 2);
        assert_eq!(a.late_sends, 1);
        assert_eq!(a.max_send_lag, Duration::from_millis(6));
        assert_eq!(
            a.last_completion,
            Some(origin + Duration::from_millis(2500))
        );
    }
}
