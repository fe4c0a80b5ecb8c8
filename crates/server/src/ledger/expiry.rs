//! Holds expire by themselves. Every service instance sweeps for pending holds past their
//! time and sends each its writer an expiry, like any other decision: the writer expires a
//! hold only if it is still pending and due under its wallet's lock, so a hold expires once
//! however many instances sweep, and a confirmation racing its expiry either wins or finds
//! it expired. The sweep needs no state of its own, so holds placed before a restart expire
//! after it.

use super::{Ledger, LedgerError};
use crate::domain::HoldDecision;
use crate::store::reads;
use crate::telemetry::metric;
use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// Most holds one sweep reads; when it finds that many, the next sweep starts at once.
const SWEEP_LIMIT: u32 = 1000;

/// Sweeps every `interval` until `stop` completes.
pub async fn run(ledger: Ledger, pool: PgPool, interval: Duration, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        while sweep(&ledger, &pool).await == SWEEP_LIMIT as usize {}
    }
}

/// Expires the holds due now, all at once (their writers batch them); returns how many
/// were due.
async fn sweep(ledger: &Ledger, pool: &PgPool) -> usize {
    let due = match reads::due_holds(pool, chrono::Utc::now(), SWEEP_LIMIT).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "cannot look for holds to expire");
            return 0;
        }
    };
    let count = due.len();
    let mut expiries = JoinSet::new();
    for (hold, wallet) in due {
        let ledger = ledger.clone();
        expiries.spawn(async move { ledger.submit(HoldDecision::expire(hold, wallet)).await });
    }
    while let Some(expired) = expiries.join_next().await {
        match expired {
            Ok(Ok(outcome)) if !outcome.replayed => {
                metrics::counter!(metric::HOLDS_EXPIRED).increment(1);
                let hold = outcome.record;
                if let (Some(due), Some(done)) = (hold.expires_at, hold.resolved_at) {
                    let lag = (done - due).to_std().unwrap_or_default();
                    metrics::histogram!(metric::HOLD_EXPIRY_LAG).record(lag);
                }
            }
            // Resolved meanwhile (here or by another instance): nothing left to do.
            Ok(Ok(_) | Err(LedgerError::HoldNotPending(_) | LedgerError::HoldNotFound(_))) => {}
            // The next sweep finds it again.
            Ok(Err(error)) => tracing::warn!(%error, "cannot expire a hold yet"),
            Err(error) => tracing::error!(%error, "a hold expiry crashed"),
        }
    }
    count
}
