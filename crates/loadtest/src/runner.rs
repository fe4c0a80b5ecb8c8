//! The measured run: open loop (a fixed arrival schedule) or closed loop (a fixed number of busy
//! clients). Each runner task drives its share of the load as a set of in-flight request futures,
//! so there is no task spawn and no channel per request, and it owns its `Recorder`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::rngs::SmallRng;

use crate::api::{Answer, Api};
use crate::cli::Mode;
use crate::stats::Recorder;
use crate::workload::{Op, Workload};

/// What to run: pacing, length and how the load is split over runner tasks.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub mode: Mode,
    pub duration: Duration,
    /// Open loop: requests in flight at once across all runners.
    pub max_in_flight: usize,
    /// Runner tasks, one per runtime thread so that each thread has its own share.
    pub runners: usize,
}

impl Plan {
    /// Connections the run will need: one per client in closed loop; in open loop enough for
    /// the schedule if requests take about 10 ms, within the in-flight cap.
    pub fn expected_connections(&self) -> usize {
        match self.mode {
            Mode::Closed { concurrency } => concurrency.get() as usize,
            Mode::Open { rate } => (rate.get() as usize / 100 + 1).min(self.max_in_flight),
        }
    }
}

/// Shared, read-only state of the runner tasks.
struct Shared {
    api: Arc<Api>,
    workload: Arc<Workload>,
    /// Finished requests so far, for the progress bar.
    completed: Arc<AtomicU64>,
    origin: Instant,
}

/// Runs the plan to its end, waits for every request in flight, and returns the merged record.
pub async fn run(
    plan: Plan,
    api: Arc<Api>,
    workload: Arc<Workload>,
    completed: Arc<AtomicU64>,
) -> Recorder {
    let shared = Arc::new(Shared {
        api,
        workload,
        completed,
        origin: Instant::now(),
    });
    let runners = plan.runners.max(1);
    let mut tasks = Vec::with_capacity(runners);
    for runner in 0..runners {
        let shared = Arc::clone(&shared);
        tasks.push(match plan.mode {
            Mode::Open { rate } => {
                let total =
                    (u128::from(rate.get()) * plan.duration.as_nanos() / 1_000_000_000) as u64;
                let schedule = Schedule {
                    rate: u64::from(rate.get()),
                    first: runner as u64,
                    stride: runners as u64,
                    total,
                };
                let cap = plan.max_in_flight.div_ceil(runners);
                tokio::spawn(async move { open_loop(&shared, schedule, cap).await })
            }
            Mode::Closed { concurrency } => {
                // Spread the clients evenly; the first runners take the remainder.
                let clients = concurrency.get() as usize / runners
                    + usize::from(runner < concurrency.get() as usize % runners);
                let end = shared.origin + plan.duration;
                tokio::spawn(async move { closed_loop(&shared, clients, end).await })
            }
        });
    }
    let mut merged = Recorder::new(shared.origin);
    for task in tasks {
        merged.merge(task.await.expect("a runner task panicked"));
    }
    merged
}

/// The share of an open-loop schedule one runner owns: request numbers `first`,
/// `first + stride`, ... below `total`, request `n` due at `n / rate` seconds after the start.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    rate: u64,
    first: u64,
    stride: u64,
    total: u64,
}

impl Schedule {
    /// When request `n` is due, counted from the start; exact, so the schedule never drifts.
    fn due(&self, n: u64) -> Duration {
        Duration::from_nanos((u128::from(n) * 1_000_000_000 / u128::from(self.rate)) as u64)
    }
}

/// Sends requests on schedule whatever the answers do. Latency counts from the due time, so a
/// stalled server shows up as latency instead of as fewer requests (no coordinated omission).
async fn open_loop(shared: &Shared, schedule: Schedule, cap: usize) -> Recorder {
    let mut rng: SmallRng = rand::make_rng();
    let mut recorder = Recorder::new(shared.origin);
    let mut in_flight = FuturesUnordered::new();
    let mut next = schedule.first;
    let timer = tokio::time::sleep_until(shared.origin.into());
    tokio::pin!(timer);
    loop {
        // Send everything that is due, as far as the in-flight cap allows.
        let now = Instant::now();
        let mut waiting_for_schedule = false;
        while next < schedule.total && in_flight.len() < cap {
            let due = shared.origin + schedule.due(next);
            if due > now {
                if timer.deadline() != due.into() {
                    timer.as_mut().reset(due.into());
                }
                waiting_for_schedule = true;
                break;
            }
            recorder.record_send_lag(now - due);
            in_flight.push(send(&shared.api, shared.workload.request(&mut rng), due));
            next += schedule.stride;
        }
        if !waiting_for_schedule && next >= schedule.total && in_flight.is_empty() {
            return recorder;
        }
        tokio::select! {
            biased;
            Some((op, answer, due)) = in_flight.next(), if !in_flight.is_empty() => {
                recorder.record(&op, &answer, due, Instant::now());
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            () = &mut timer, if waiting_for_schedule => {}
        }
    }
}

/// Keeps `clients` requests in flight until `end`: each answer immediately triggers the next
/// request, as a client that waits for its answer would.
async fn closed_loop(shared: &Shared, clients: usize, end: Instant) -> Recorder {
    let mut rng: SmallRng = rand::make_rng();
    let mut recorder = Recorder::new(shared.origin);
    let mut in_flight = FuturesUnordered::new();
    let now = Instant::now();
    for _ in 0..clients {
        in_flight.push(send(&shared.api, shared.workload.request(&mut rng), now));
    }
    while let Some((op, answer, sent)) = in_flight.next().await {
        let now = Instant::now();
        recorder.record(&op, &answer, sent, now);
        shared.completed.fetch_add(1, Ordering::Relaxed);
        if now < end {
            in_flight.push(send(&shared.api, shared.workload.request(&mut rng), now));
        }
    }
    recorder
}

/// One request, carrying what the recorder needs back with its answer.
async fn send(api: &Api, op: Op, start: Instant) -> (Op, Answer, Instant) {
    let answer = api.execute(&op).await;
    (op, answer, start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn connections_follow_clients_or_rate() {
        let plan = |mode| Plan {
            mode,
            duration: Duration::from_secs(1),
            max_in_flight: 50,
            runners: 1,
        };
        let n = |v| NonZeroU32::new(v).unwrap();
        assert_eq!(
            plan(Mode::Closed { concurrency: n(64) }).expected_connections(),
            64
        );
        assert_eq!(
            plan(Mode::Open { rate: n(1000) }).expected_connections(),
            11
        );
        assert_eq!(
            plan(Mode::Open { rate: n(100_000) }).expected_connections(),
            50
        );
    }

    #[test]
    fn schedule_spaces_requests_evenly_without_drift() {
        let schedule = Schedule {
            rate: 3,
            first: 0,
            stride: 1,
            total: 9,
        };
        assert_eq!(schedule.due(0), Duration::ZERO);
        assert_eq!(schedule.due(1), Duration::from_nanos(333_333_333));
        assert_eq!(schedule.due(3), Duration::from_secs(1));
        assert_eq!(schedule.due(3_000_000), Duration::from_secs(1_000_000));
    }
}
