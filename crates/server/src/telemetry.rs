//! Logs and metrics: how the service is set up to be watched.
//!
//! Metrics go through the `metrics` facade into one process-wide Prometheus recorder; the
//! admin listener renders it. Recording is an atomic update plus a lookup in a sharded map,
//! cheap enough for every request on the hot path.

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// One human-readable line per event, for terminals.
    Pretty,
}

/// Installs the global log subscriber. `filter` is a `RUST_LOG` directive.
pub fn init_logs(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|error| anyhow::anyhow!("invalid RUST_LOG {filter:?}: {error}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        // Colours only for a person at a terminal, never escape codes in a log file.
        LogFormat::Pretty => builder.with_ansi(std::io::stdout().is_terminal()).init(),
    }
    Ok(())
}

/// Names of every metric the service records, so that recording and documentation agree.
pub mod metric {
    pub const HTTP_REQUESTS: &str = "wallet_http_requests_total";
    pub const HTTP_DURATION: &str = "wallet_http_request_duration_seconds";
    pub const HTTP_IN_FLIGHT: &str = "wallet_http_requests_in_flight";
    pub const OPERATIONS: &str = "wallet_operations_total";
    pub const LEDGER_BATCH_SIZE: &str = "wallet_ledger_batch_size";
    pub const LEDGER_COMMIT_DURATION: &str = "wallet_ledger_commit_duration_seconds";
    pub const LEDGER_RETRIES: &str = "wallet_ledger_retries_total";
    pub const LEDGER_UNREMEMBERED: &str = "wallet_ledger_unremembered_total";
    pub const LEDGER_QUEUE_DEPTH: &str = "wallet_ledger_queue_depth";
    pub const DB_POOL_CONNECTIONS: &str = "wallet_db_pool_connections";
    pub const HOLDS_EXPIRED: &str = "wallet_holds_expired_total";
    pub const HOLD_EXPIRY_LAG: &str = "wallet_hold_expiry_lag_seconds";
    pub const EVENTS_OUTBOX_BACKLOG: &str = "wallet_events_outbox_backlog";
    pub const EVENTS_PUBLISH_LAG: &str = "wallet_events_publish_lag_seconds";
    pub const EVENTS_PUBLISHED: &str = "wallet_events_published_total";
    pub const EVENTS_RELAY_ACTIVE: &str = "wallet_events_relay_active";
}

/// Latency buckets (seconds): a commit takes about a millisecond, a request under load a few.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Operations per committed batch, up to the largest `WALLET_MAX_BATCH`.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 100000.0,
];

/// The process-wide Prometheus recorder, installed on first use. Every [`crate::Application`]
/// in a process (tests run several) shares it.
pub fn prometheus() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metric::LEDGER_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder)
                .ok()?;
            describe();
            Some(handle)
        })
        .clone()
        .ok_or_else(|| anyhow::anyhow!("cannot install the metrics recorder: another is in place"))
}

fn describe() {
    use metric::*;
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, matched route and status"
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from request to response, by method, matched route and status"
    );
    metrics::describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests being handled");
    metrics::describe_counter!(
        OPERATIONS,
        "Writes by type (DEPOSIT, WITHDRAW, TRANSFER, CONFIRM, VOID) and outcome (applied, \
         pending, insufficient_funds, balance_limit_exceeded, replayed, wallet_not_found, \
         hold_not_found, hold_not_pending, idempotency_key_reused, unavailable, internal)"
    );
    metrics::describe_histogram!(
        LEDGER_BATCH_SIZE,
        Unit::Count,
        "Operations committed per ledger transaction"
    );
    metrics::describe_histogram!(
        LEDGER_COMMIT_DURATION,
        Unit::Seconds,
        "Duration of a successful ledger transaction, from begin to commit"
    );
    metrics::describe_counter!(
        LEDGER_RETRIES,
        "Ledger batches retried after a database error or timeout"
    );
    // Exported from the start, not from the first retry, so that `rate()` sees a zero.
    metrics::counter!(LEDGER_RETRIES).absolute(0);
    metrics::describe_counter!(
        LEDGER_UNREMEMBERED,
        "Ledger batches decided on remembered funds that were no longer true (another writer \
         wrote a wallet meanwhile), decided again on the stored ones"
    );
    metrics::counter!(LEDGER_UNREMEMBERED).absolute(0);
    metrics::describe_gauge!(
        LEDGER_QUEUE_DEPTH,
        "Requests waiting for their shard's writer, by shard"
    );
    metrics::describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Connections of the read pool, by state (in_use, idle)"
    );
    metrics::describe_counter!(HOLDS_EXPIRED, "Holds this instance expired");
    metrics::counter!(HOLDS_EXPIRED).absolute(0);
    metrics::describe_histogram!(
        HOLD_EXPIRY_LAG,
        Unit::Seconds,
        "How long after its expiry time a hold was expired by this instance's sweep"
    );
    metrics::describe_gauge!(
        EVENTS_OUTBOX_BACKLOG,
        "Events committed and not yet confirmed by the broker (the span of their sequence \
         numbers, a little more than their count after rolled-back batches), counted each \
         second by this instance's relay while it is the active one; 0 otherwise"
    );
    metrics::describe_histogram!(
        EVENTS_PUBLISH_LAG,
        Unit::Seconds,
        "Time from an event's change (its batch's decision, just before the commit) to the \
         broker's confirm of it"
    );
    metrics::describe_counter!(
        EVENTS_PUBLISHED,
        "Events this instance's relay published and the broker confirmed"
    );
    metrics::describe_gauge!(
        EVENTS_RELAY_ACTIVE,
        "1 while this instance's relay is the one publishing for its database"
    );
    // Exported from the start, events on or off, so that dashboards summing them over every
    // instance find them.
    metrics::gauge!(EVENTS_RELAY_ACTIVE).set(0.0);
    metrics::gauge!(EVENTS_OUTBOX_BACKLOG).set(0.0);
    metrics::counter!(EVENTS_PUBLISHED).absolute(0);
    let _registered = metrics::histogram!(EVENTS_PUBLISH_LAG);
}
