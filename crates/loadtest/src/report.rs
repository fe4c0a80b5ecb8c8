//! The report: a summary, a per-second timeline, the verification verdict and, when asked for,
//! the event stream's, printed for people and serialisable as JSON for scripts that compare
//! runs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::{Counter, Histogram};
use serde::Serialize;

use crate::cli::Mode;
use crate::events;
use crate::runner::Plan;
use crate::stats::{CAPTURE, KINDS, LATE, Recorder};
use crate::verify::Verdict;
use crate::workload::WriteKind;

/// The whole report, as written by `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub timeline: Vec<SecondSummary>,
    pub verification: Verdict,
    /// The check of the event stream, with `--events-amqp-url` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<events::Verdict>,
}

/// Run-wide figures.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `open` or `closed`.
    pub mode: &'static str,
    /// Open loop: the arrival rate asked for, requests per second.
    pub target_rate: Option<u32>,
    /// Closed loop: the number of clients.
    pub concurrency: Option<u32>,
    /// How long load was generated, as asked for.
    pub duration_seconds: f64,
    /// When the load started, in milliseconds since the Unix epoch (wall clock), so that the
    /// run can be lined up with what was sampled outside the tool: CPU use, server metrics.
    pub started_at_unix_ms: u64,
    /// Runtime threads (and runner tasks) of the load generator.
    pub threads: usize,
    pub wallets: u32,
    pub mix: String,
    /// The `--transfers` pattern, when the mix has transfers.
    pub transfers: Option<String>,
    /// Operations per request: above 1, each request is a batch of this many.
    pub batch_size: usize,
    /// Seconds from the start of the run to the last answer.
    pub elapsed_seconds: f64,
    /// Requests made; a payment, its hold and the hold's confirmation or void, counts as one.
    pub requests: u64,
    /// Of the requests, payments (`capture` in the mix).
    pub payments: u64,
    /// Requests answered as the API documents (200, or 409 INSUFFICIENT_FUNDS for a
    /// withdrawal, a transfer or a payment's hold).
    pub ok: u64,
    pub ok_per_second: f64,
    pub requests_per_second: f64,
    /// Operations made: one per request, a batch's items each.
    pub items: u64,
    /// Operations answered as the API documents, a batch's items each as if sent alone.
    pub ok_items: u64,
    pub items_per_second: f64,
    pub ok_items_per_second: f64,
    /// True in open loop, where latency counts from the intended start rather than the send.
    pub latency_from_intended_start: bool,
    pub latency_ms: Percentiles,
    /// Latency per request kind that occurred (`deposit`, `withdraw`, `transfer`, `capture`,
    /// `read`, `live`, `batch`); a payment's from the start of its hold to the answer to its
    /// second request, a batch's for the whole batch.
    pub latency_by_kind_ms: BTreeMap<&'static str, Percentiles>,
    /// Answers by HTTP status code.
    pub statuses: BTreeMap<u16, u64>,
    pub server_errors: u64,
    pub timeouts: u64,
    pub transport_errors: u64,
    /// Withdrawals refused for insufficient funds; like the other write counts, a batch's
    /// items each.
    pub rejected_withdrawals: u64,
    pub rejected_transfers: u64,
    /// Payments whose hold was refused for insufficient funds.
    pub rejected_payments: u64,
    /// Deposits, withdrawals and transfers answered `200 APPLIED`, and payments confirmed or
    /// voided as asked.
    pub acknowledged_writes: u64,
    /// Writes without a settling answer, looked up before verifying.
    pub unsettled_writes: u64,
    /// Open loop: requests sent more than 5 ms behind schedule.
    pub late_sends: u64,
    pub max_send_lag_ms: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Reads percentiles from a histogram of microseconds.
    pub fn of<T: Counter>(histogram: &Histogram<T>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// One second of the timeline, by completion time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondSummary {
    pub second: u64,
    pub completed: u64,
    pub ok: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Summary {
    /// Condenses a finished run.
    pub fn new(
        plan: &Plan,
        wallets: u32,
        mix: String,
        transfers: Option<String>,
        batch_size: usize,
        recorder: &Recorder,
    ) -> Self {
        let elapsed = recorder
            .last_completion
            .map_or(Duration::ZERO, |last| last - recorder.origin());
        let per_second = |count: u64| {
            if elapsed.is_zero() {
                0.0
            } else {
                count as f64 / elapsed.as_secs_f64()
            }
        };
        let statuses: BTreeMap<u16, u64> = recorder.status_counts().collect();
        let (target_rate, concurrency) = match plan.mode {
            Mode::Open { rate } => (Some(rate.get()), None),
            Mode::Closed { concurrency } => (None, Some(concurrency.get())),
        };
        Summary {
            mode: if target_rate.is_some() {
                "open"
            } else {
                "closed"
            },
            target_rate,
            concurrency,
            duration_seconds: plan.duration.as_secs_f64(),
            started_at_unix_ms: wall_clock(recorder.origin()),
            threads: plan.runners,
            wallets,
            mix,
            transfers,
            batch_size,
            elapsed_seconds: elapsed.as_secs_f64(),
            requests: recorder.completed(),
            payments: recorder.latency_by_kind[CAPTURE].len(),
            ok: recorder.ok(),
            ok_per_second: per_second(recorder.ok()),
            requests_per_second: per_second(recorder.completed()),
            items: recorder.items,
            ok_items: recorder.ok_items,
            items_per_second: per_second(recorder.items),
            ok_items_per_second: per_second(recorder.ok_items),
            latency_from_intended_start: target_rate.is_some(),
            latency_ms: Percentiles::of(&recorder.latency),
            latency_by_kind_ms: KINDS
                .into_iter()
                .zip(&recorder.latency_by_kind)
                .filter(|(_, histogram)| !histogram.is_empty())
                .map(|(kind, histogram)| (kind, Percentiles::of(histogram)))
                .collect(),
            server_errors: statuses.range(500..).map(|(_, n)| n).sum(),
            statuses,
            timeouts: recorder.timeouts,
            transport_errors: recorder.transport_errors,
            rejected_withdrawals: recorder
                .rejected_of(|kind| matches!(kind, WriteKind::Withdraw { .. })),
            rejected_transfers: recorder
                .rejected_of(|kind| matches!(kind, WriteKind::Transfer { .. })),
            rejected_payments: recorder
                .rejected_of(|kind| matches!(kind, WriteKind::Capture { .. })),
            acknowledged_writes: recorder.acknowledged.len() as u64,
            unsettled_writes: recorder.unsettled.len() as u64,
            late_sends: recorder.late_sends,
            max_send_lag_ms: recorder.max_send_lag.as_secs_f64() * 1000.0,
        }
    }

    /// Answers that are neither documented outcomes nor transport failures: 4xx other than a
    /// withdrawal, transfer or hold rejected for insufficient funds, 5xx, or a 200 without the
    /// record asked for.
    pub fn unexpected(&self) -> u64 {
        self.requests - self.ok - self.timeouts - self.transport_errors
    }
}

/// The wall-clock time of a monotonic instant, in milliseconds since the Unix epoch.
fn wall_clock(instant: std::time::Instant) -> u64 {
    SystemTime::now()
        .checked_sub(instant.elapsed())
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_millis() as u64)
}

/// The per-second timeline of a finished run.
pub fn timeline(recorder: &Recorder) -> Vec<SecondSummary> {
    recorder
        .timeline
        .iter()
        .enumerate()
        .map(|(second, slot)| {
            let latency = Percentiles::of(&slot.latency);
            SecondSummary {
                second: second as u64,
                completed: slot.completed,
                ok: slot.ok,
                p50_ms: latency.p50,
                p99_ms: latency.p99,
            }
        })
        .collect()
}

impl Report {
    /// Why the run fails, if it does: any answer other than the documented ones (5xx included),
    /// any timeout or transport error, any discrepancy in the ledger, any event of the stream
    /// missing, unexpected, mismatched, out of order or malformed.
    pub fn failures(&self) -> Vec<String> {
        let s = &self.summary;
        let mut failures = Vec::new();
        if s.server_errors > 0 {
            failures.push(format!("{} server errors (5xx)", s.server_errors));
        }
        let other = s.unexpected() - s.server_errors;
        if other > 0 {
            failures.push(format!("{other} unexpected answers"));
        }
        if s.timeouts + s.transport_errors > 0 {
            failures.push(format!(
                "{} timeouts and {} transport errors",
                s.timeouts, s.transport_errors
            ));
        }
        if !self.verification.consistent {
            failures.push(format!(
                "{} discrepancies",
                self.verification.discrepancies.len()
            ));
        }
        if let Some(events) = &self.events {
            failures.extend(events.failures());
        }
        failures
    }

    /// Whether the run passes: every answer as documented and the ledger exact.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        match (s.target_rate, s.concurrency) {
            (Some(rate), _) => write!(f, "open loop at {rate} requests/s")?,
            (_, Some(clients)) => write!(f, "closed loop with {clients} clients")?,
            _ => {}
        }
        writeln!(
            f,
            " for {} s on {} thread(s)",
            s.duration_seconds, s.threads
        )?;
        write!(f, "wallets {}, mix {}", s.wallets, s.mix)?;
        match &s.transfers {
            Some(pattern) => writeln!(f, ", transfers {pattern}")?,
            None => writeln!(f)?,
        }
        // A run of payments alone is measured in payments; in a mix, say how they count. A run
        // of batches is measured in batches, and then in their items.
        let (unit, note) = match s.payments {
            0 if s.batch_size > 1 => ("batches", format!(" ({} items each)", s.batch_size)),
            0 => ("requests", String::new()),
            n if n == s.requests => (
                "payments",
                " (each a hold, then its confirm or void)".into(),
            ),
            n => (
                "requests",
                format!(" ({n} payments among them, each a hold and its confirm or void as one)"),
            ),
        };
        writeln!(
            f,
            "{unit:<10} {} in {:.2} s: {:.0}/s total, {:.0}/s ok{note}",
            s.requests, s.elapsed_seconds, s.requests_per_second, s.ok_per_second
        )?;
        if s.batch_size > 1 {
            writeln!(
                f,
                "items      {} in {:.2} s: {:.0}/s total, {:.0}/s ok",
                s.items, s.elapsed_seconds, s.items_per_second, s.ok_items_per_second
            )?;
        }
        let statuses: Vec<String> = s
            .statuses
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect();
        writeln!(
            f,
            "statuses   {}; timeouts: {}; transport errors: {}",
            statuses.join(", "),
            s.timeouts,
            s.transport_errors
        )?;
        writeln!(
            f,
            "writes     {} acknowledged, {} withdrawals, {} transfers and {} payments rejected for \
             insufficient funds, {} unsettled",
            s.acknowledged_writes,
            s.rejected_withdrawals,
            s.rejected_transfers,
            s.rejected_payments,
            s.unsettled_writes
        )?;
        let l = &s.latency_ms;
        writeln!(
            f,
            "latency ms p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}{}",
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            if s.latency_from_intended_start {
                "  (from intended start)"
            } else {
                ""
            }
        )?;
        for (kind, l) in &s.latency_by_kind_ms {
            writeln!(
                f,
                "  {kind:<8} p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                l.p50, l.p90, l.p99, l.p999, l.max
            )?;
        }
        if s.latency_from_intended_start {
            writeln!(
                f,
                "schedule   {} sends more than {} ms late, max lag {:.1} ms",
                s.late_sends,
                LATE.as_millis(),
                s.max_send_lag_ms
            )?;
        }
        writeln!(f, "\n second  completed        ok   p50 ms   p99 ms")?;
        for second in &self.timeline {
            writeln!(
                f,
                "{:>7} {:>10} {:>9} {:>8.2} {:>8.2}",
                second.second, second.completed, second.ok, second.p50_ms, second.p99_ms
            )?;
        }
        writeln!(f)?;
        write!(f, "{}", self.verification)?;
        if let Some(events) = &self.events {
            write!(f, "{events}")?;
        }
        let failures = self.failures();
        if !failures.is_empty() {
            writeln!(f, "FAILED: {}", failures.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Answer, Outcome};
    use crate::workload::{Op, Write, WriteKind};
    use std::num::NonZeroU32;
    use std::time::Instant;

    fn report(outcomes: &[Outcome], verification: Verdict) -> Report {
        let reads: Vec<_> = outcomes
            .iter()
            .map(|&outcome| (Op::Read { wallet: 0 }, outcome))
            .collect();
        report_of(&reads, verification)
    }

    fn report_of(requests: &[(Op, Outcome)], verification: Verdict) -> Report {
        let answered: Vec<_> = requests
            .iter()
            .map(|(op, outcome)| (op.clone(), Answer::from(*outcome)))
            .collect();
        report_in_batches(&answered, 1, verification)
    }

    /// The report of a run of `batch_size` operations per request.
    fn report_in_batches(
        requests: &[(Op, Answer)],
        batch_size: usize,
        verification: Verdict,
    ) -> Report {
        let origin = Instant::now();
        let mut recorder = Recorder::new(origin);
        for (i, (op, answer)) in requests.iter().enumerate() {
            let end = origin + Duration::from_millis(10 * i as u64 + 1);
            recorder.record(op, answer, origin, end);
        }
        let plan = Plan {
            mode: Mode::Closed {
                concurrency: NonZeroU32::new(1).unwrap(),
            },
            duration: Duration::from_secs(1),
            max_in_flight: 1,
            runners: 1,
        };
        Report {
            summary: Summary::new(&plan, 1, "read=1".to_owned(), None, batch_size, &recorder),
            timeline: timeline(&recorder),
            verification,
            events: None,
        }
    }

    fn consistent() -> Verdict {
        Verdict {
            consistent: true,
            ..Verdict::default()
        }
    }

    #[test]
    fn documented_answers_and_an_exact_ledger_pass() {
        let report = report(&[Outcome::Read, Outcome::Rejected], consistent());
        assert!(report.passed(), "{:?}", report.failures());
        assert_eq!(report.summary.ok, 2);
        assert!(report.to_string().contains("CONSISTENT"));
    }

    #[test]
    fn server_errors_unexpected_answers_and_timeouts_fail_the_run() {
        let outcomes = [
            Outcome::Read,
            Outcome::Other(503),
            Outcome::Other(404),
            Outcome::Timeout,
        ];
        let report = report(&outcomes, consistent());
        assert_eq!(
            report.failures(),
            [
                "1 server errors (5xx)",
                "1 unexpected answers",
                "1 timeouts and 0 transport errors"
            ]
        );
        assert_eq!(
            report.summary.statuses,
            BTreeMap::from([(200, 1), (404, 1), (503, 1)])
        );
    }

    #[test]
    fn transfers_count_like_the_other_writes() {
        let write = |kind| {
            Op::Write(Write {
                kind,
                amount: 1,
                id: uuid::Uuid::nil(),
            })
        };
        let transfer = write(WriteKind::Transfer { from: 1, to: 0 });
        let requests = [
            (transfer.clone(), Outcome::Applied),
            (transfer, Outcome::Rejected),
            (write(WriteKind::Deposit { wallet: 0 }), Outcome::Applied),
        ];
        let report = report_of(&requests, consistent());
        assert!(report.passed(), "{:?}", report.failures());
        let s = &report.summary;
        assert_eq!((s.ok, s.acknowledged_writes), (3, 2));
        assert_eq!((s.rejected_withdrawals, s.rejected_transfers), (0, 1));
        assert!(s.latency_by_kind_ms.contains_key("transfer"));
        assert!(
            report
                .to_string()
                .contains("0 withdrawals, 1 transfers and 0 payments rejected"),
            "{report}"
        );
    }

    #[test]
    fn payments_count_once_and_a_run_of_them_alone_is_measured_in_payments() {
        let payment = Op::Write(Write {
            kind: WriteKind::Capture {
                wallet: 0,
                settle: crate::workload::Settle::Void,
            },
            amount: 5,
            id: uuid::Uuid::nil(),
        });
        let report = report_of(
            &[
                (payment.clone(), Outcome::Applied),
                (payment.clone(), Outcome::Rejected),
            ],
            consistent(),
        );
        assert!(report.passed(), "{:?}", report.failures());
        let s = &report.summary;
        assert_eq!((s.requests, s.payments, s.ok), (2, 2, 2));
        assert_eq!((s.acknowledged_writes, s.rejected_payments), (1, 1));
        assert!(s.latency_by_kind_ms.contains_key("capture"));
        let text = report.to_string();
        assert!(text.contains("\npayments   2 in "), "{text}");
        assert!(text.contains("1 payments rejected"), "{text}");

        let mixed = report_of(
            &[
                (payment, Outcome::Applied),
                (Op::Read { wallet: 0 }, Outcome::Read),
            ],
            consistent(),
        );
        let text = mixed.to_string();
        assert!(text.contains("\nrequests   2 in "), "{text}");
        assert!(text.contains("(1 payments among them"), "{text}");
    }

    #[test]
    fn a_run_of_batches_counts_requests_and_their_items() {
        let write = |kind| Write {
            kind,
            amount: 1,
            id: uuid::Uuid::nil(),
        };
        let batch = Op::Batch(vec![
            write(WriteKind::Deposit { wallet: 0 }),
            write(WriteKind::Withdraw { wallet: 0 }),
        ]);
        let decided = Answer::Batch {
            outcome: Outcome::Decided,
            items: vec![Outcome::Applied, Outcome::Rejected],
        };
        let requests = [(batch.clone(), decided.clone()), (batch, decided)];
        let report = report_in_batches(&requests, 2, consistent());
        assert!(report.passed(), "{:?}", report.failures());
        let s = &report.summary;
        assert_eq!((s.requests, s.ok, s.batch_size), (2, 2, 2));
        assert_eq!((s.items, s.ok_items), (4, 4));
        assert_eq!(s.ok_items_per_second, 2.0 * s.ok_per_second);
        assert_eq!((s.acknowledged_writes, s.rejected_withdrawals), (2, 2));
        assert!(s.latency_by_kind_ms.contains_key("batch"));
        let text = report.to_string();
        let (seconds, per_second) = (s.elapsed_seconds, s.ok_per_second);
        let batches = format!(
            "\nbatches    2 in {seconds:.2} s: {per_second:.0}/s total, {per_second:.0}/s ok \
             (2 items each)\n"
        );
        assert!(text.contains(&batches), "{text}");
        let per_second = s.ok_items_per_second;
        let items = format!(
            "\nitems      4 in {seconds:.2} s: {per_second:.0}/s total, {per_second:.0}/s ok\n"
        );
        assert!(text.contains(&items), "{text}");
        let json = serde_json::to_value(&report.summary).unwrap();
        for field in [
            "batchSize",
            "items",
            "okItems",
            "itemsPerSecond",
            "okItemsPerSecond",
        ] {
            assert!(json.get(field).is_some(), "no {field} in {json}");
        }
    }

    #[test]
    fn one_operation_per_request_shows_no_items_line() {
        let report = report(&[Outcome::Read, Outcome::Other(503)], consistent());
        let s = &report.summary;
        assert_eq!((s.batch_size, s.items, s.ok_items), (1, 2, 1));
        let text = report.to_string();
        assert!(text.contains("\nrequests   2 in "), "{text}");
        assert!(!text.contains("\nitems "), "{text}");
    }

    #[test]
    fn a_discrepancy_fails_the_run() {
        let verdict = Verdict {
            consistent: false,
            discrepancies: vec!["wallet x: balance 1, expected 2".to_owned()],
            ..Verdict::default()
        };
        let report = report(&[Outcome::Read], verdict);
        assert_eq!(report.failures(), ["1 discrepancies"]);
        assert!(report.to_string().contains("DISCREPANCY wallet x"));
    }

    #[test]
    fn event_stream_is_reported_only_when_checked() {
        let report = report(&[Outcome::Read], consistent());
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("events").is_none(), "{json}");
        assert!(!report.to_string().contains("events "));
    }

    #[test]
    fn event_stream_problems_fail_the_run() {
        let mut report = report(&[Outcome::Read], consistent());
        report.events = Some(events::Verdict {
            received: 9,
            expected: 10,
            missing: 1,
            out_of_order: 2,
            problems: vec!["missing: no hold.confirmed event for write x".to_owned()],
            ..events::Verdict::default()
        });
        assert_eq!(
            report.failures(),
            ["1 events missing", "2 events out of order"]
        );
        let text = report.to_string();
        assert!(
            text.contains("\nevents     9 received (0 duplicates) of 10 expected: 1 missing"),
            "{text}"
        );
        assert!(
            text.contains("\nEVENT missing: no hold.confirmed event for write x\n"),
            "{text}"
        );
        assert!(text.contains("FAILED: 1 events missing; 2 events out of order"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["events"]["outOfOrder"], 2);
    }

    #[test]
    fn percentiles_are_read_in_milliseconds() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for micros in 1..=1000 {
            histogram.record(micros * 1000).unwrap();
        }
        let p = Percentiles::of(&histogram);
        // Three significant digits: within 0.1% of the exact value.
        let close = |actual: f64, expected: f64| (actual - expected).abs() <= expected * 0.001;
        assert!(close(p.p50, 500.0), "{p:?}");
        assert!(close(p.p90, 900.0), "{p:?}");
        assert!(close(p.p99, 990.0), "{p:?}");
        assert!(close(p.p999, 999.0), "{p:?}");
        assert!(close(p.max, 1000.0), "{p:?}");
        assert!(close(p.mean, 500.5), "{p:?}");
    }

    #[test]
    fn start_of_the_load_is_dated_on_the_wall_clock() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let started = wall_clock(Instant::now() - Duration::from_secs(2));
        assert!(
            (now_ms - 2000).abs_diff(started) < 500,
            "{now_ms} {started}"
        );
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let histogram = Histogram::<u32>::new_with_bounds(1, 1000, 2).unwrap();
        assert_eq!(Percentiles::of(&histogram).max, 0.0);
    }
}
