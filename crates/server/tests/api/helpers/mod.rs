//! The one harness of the integration tests.
//!
//! - [`app`]: [`spawn_app`], the service in this process on a fresh database, and
//!   [`TestApp`], the HTTP client every test talks to a server through.
//! - [`router`]: the API router without a server or a database, for tests of the HTTP layer.
//! - [`process`]: the real `wallet-server` binary as a child process (signals, logs, crashes).
//! - [`database`]: the PostgreSQL server the tests use and the databases they create on it,
//!   each dropped when its test ends.
//! - [`pg_cluster`]: a throwaway PostgreSQL cluster that a test may crash.
//! - [`bank`]: clients that retry until they get an answer, and the checks that prove nothing
//!   was lost or applied twice.
//! - [`ledger`]: the stored ledger's invariants (balances, held amounts, conservation,
//!   transfer legs, hold resolutions), with SQL behind the API.
//! - [`raw`]: HTTP/1.1 over a bare socket, for requests no client library sends.
//! - [`reply`]: a response read whole, and the problem+json check.
//! - [`events`]: a consumer of the event stream on the real RabbitMQ, the check that each
//!   wallet's events arrived in its commit order, and a proxy that cuts the broker off.
//! - [`metrics`]: a parsed scrape of the admin listener's `/metrics`.

pub mod app;
pub mod bank;
pub mod database;
pub mod events;
pub mod ledger;
pub mod metrics;
pub mod pg_cluster;
pub mod process;
pub mod raw;
pub mod reply;
pub mod router;

pub use app::{TestApp, spawn_app, spawn_app_with};
pub use process::ServerProcess;
pub use reply::{
    Reply, assert_problem, assert_problem_in, assert_timestamp, assert_uuid, field_names,
    status_and_body, timestamp,
};

use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// The body of `POST /api/v1/wallet`: `kind` is `"DEPOSIT"` or `"WITHDRAW"`; with `id` it
/// carries that `operationId`, without it the service picks one.
pub fn operation_body(wallet: Uuid, kind: &str, amount: u64, id: Option<Uuid>) -> Value {
    let mut body = json!({"walletId": wallet, "operationType": kind, "amount": amount});
    if let Some(id) = id {
        body["operationId"] = json!(id);
    }
    body
}

/// The body of `POST /api/v1/transfers`; with `id` it carries that `transferId`, without it
/// the service picks one.
pub fn transfer_body(from: Uuid, to: Uuid, amount: u64, id: Option<Uuid>) -> Value {
    let mut body = json!({"fromWalletId": from, "toWalletId": to, "amount": amount});
    if let Some(id) = id {
        body["transferId"] = json!(id);
    }
    body
}

/// `body`, of `POST /api/v1/wallet` (a withdrawal) or `POST /api/v1/transfers`, as a hold:
/// `"pending": true`, and `"timeoutSeconds"` when given.
pub fn pending(mut body: Value, timeout_seconds: Option<u64>) -> Value {
    body["pending"] = json!(true);
    if let Some(timeout) = timeout_seconds {
        body["timeoutSeconds"] = json!(timeout);
    }
    body
}

/// Ids in a path that are not `id` in the hyphenated form, the only one the API takes: not a
/// UUID at all, and `id` braced, as a URN and as 32 digits.
pub fn malformed_ids(id: Uuid) -> [String; 4] {
    [
        "not-a-uuid".to_owned(),
        format!("{{{id}}}"),
        format!("urn:uuid:{id}"),
        id.simple().to_string(),
    ]
}

/// Largest amount and balance: 2^53 - 1, as the contract spells it.
pub const MAX_MONEY: u64 = 9_007_199_254_740_991;

/// Deposits, withdrawals, transfers and hold decisions in one request.
pub const BATCHES: &str = "/api/v1/batches";

/// The header that names a write instead of an id in its body.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// `"DEPOSIT"` or `"WITHDRAW"`, for loads that toss a coin.
pub fn kind(deposit: bool) -> &'static str {
    if deposit { "DEPOSIT" } else { "WITHDRAW" }
}

/// Runs `check` every 100 ms until it returns something, and returns that. Panics after
/// `limit`, naming `what` it waited for: a bound on a hang, not a timing expectation.
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago. The caller binds it soon after; a
/// process that takes it in between makes that bind fail loudly, never silently share it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
