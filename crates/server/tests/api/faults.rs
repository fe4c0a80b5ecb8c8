//! Crash and fault tests. Each test runs its own PostgreSQL cluster and the real service
//! binary, puts three hot wallets under load from sixteen clients (deposits, withdrawals and
//! transfers between the three) that retry every outcome they did not see with the same
//! `operationId` or `transferId`, breaks something again and again, and then runs the bank
//! test's end checks (`helpers::bank::verify`): every acknowledged operation recorded exactly
//! once, nothing applied twice, never one leg of a transfer without the other, money
//! conserved, every balance equal to its history and never negative. Throughout, every 503
//! must carry `Retry-After` and no request may hang.
//!
//! With holds pending beside the load, a `kill -9` must neither lose nor repeat a hold's
//! expiry or confirmation.
//!
//! `scripts/soak.sh` runs the same faults for many more cycles.

use crate::helpers::bank::{self, Summary, Workload};
use crate::helpers::database::on_citus;
use crate::helpers::pg_cluster::PgCluster;
use crate::helpers::{ServerProcess, TestApp, free_port, operation_body, pending, transfer_body};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

/// The service's request timeout: short, so outages produce 503s quickly.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);

/// How much longer than its timeout a request may take before it counts as hung: room for a
/// loaded two-core machine, not a performance target.
const HANG_MARGIN: Duration = Duration::from_secs(10);

/// Definitive answers that show the service serves (again) after a fault.
const PROGRESS: u64 = 50;

/// Hot wallets, clients, and each wallet's first deposit: few wallets and small balances,
/// so that batches collide on the same rows and some withdrawals are rejected.
const WALLETS: usize = 3;
const CLIENTS: u64 = 16;
const INITIAL_BALANCE: u64 = 100;

/// Writers of the service (its `--shards`).
const WRITERS: i64 = 2;

/// Database sessions of each writer: the one of batches that lock first, and its pipelined
/// one.
const SESSIONS_PER_WRITER: i64 = 2;

/// A cluster, the service on it, and the clients, torn down (service killed, cluster stopped
/// and deleted with its database) when dropped, also when a test fails.
struct Harness {
    load: Workload,
    /// The service's API, at one address across restarts.
    app: TestApp,
    service: ServerProcess,
    /// The database's servers: one, or a Citus coordinator and its workers.
    nodes: Vec<PgCluster>,
    database_url: String,
}

impl Harness {
    async fn start() -> Self {
        let cluster = PgCluster::start();
        let database_url = cluster.url("wallet");
        Self::start_on(vec![cluster], database_url).await
    }

    /// On a Citus coordinator with two workers of its own, whose `postgres` database is the
    /// service's.
    async fn start_on_citus() -> Self {
        let nodes = PgCluster::start_citus(2).await;
        let database_url = nodes[0].url("postgres");
        Self::start_on(nodes, database_url).await
    }

    async fn start_on(nodes: Vec<PgCluster>, database_url: String) -> Self {
        // A fixed port, so that clients keep one URL across crashes.
        let http_addr = format!("127.0.0.1:{}", free_port());
        let request_timeout = REQUEST_TIMEOUT.as_millis().to_string();
        let flags = [
            "--http-addr",
            &http_addr,
            // Two writers for three hot wallets: batches mix wallets on one connection.
            "--shards",
            "2",
            "--db-pool-size",
            "4",
            "--request-timeout-ms",
            &request_timeout,
            "--log",
            "info,sqlx=warn",
        ];
        let service = ServerProcess::start_on(&database_url, &flags).await;
        let app = service.app();
        let load = Workload::start(&app, WALLETS, CLIENTS, INITIAL_BALANCE).await;
        load.wait_for_progress(PROGRESS, "load before the first fault")
            .await;
        Self {
            load,
            app,
            service,
            nodes,
            database_url,
        }
    }

    /// `kill -9` mid-load, then a start on the same port.
    async fn crash_service(&mut self) {
        self.service.kill().await;
        // Clients meet refused connections and answers cut off while it is down.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.service.restart().await;
        self.load
            .wait_for_progress(PROGRESS, "service restarted after kill -9")
            .await;
    }

    /// `pg_ctl stop -m immediate` mid-load: requests get 503 while it is down; once it is
    /// back (after crash recovery) the same service process serves again.
    async fn crash_database(&mut self) {
        self.crash_node(0, "the database").await;
    }

    /// The same for one server of the database: on Citus, 0 is the coordinator, then the
    /// workers.
    async fn crash_node(&mut self, node: usize, what: &str) {
        let seen = self.load.unavailable();
        self.nodes[node].stop_immediate();
        self.load
            .wait_for_unavailable(seen, &format!("503 while {what} is down"))
            .await;
        self.nodes[node].start_server();
        self.load
            .wait_for_progress(PROGRESS, &format!("service after {what} restarted"))
            .await;
        assert!(
            self.service.is_running(),
            "the service must recover by itself, not exit"
        );
    }

    /// Stops the clients, runs the end checks and asserts they all hold. Prints the counts
    /// first (the soak script reads that line), so a failure still reports them.
    async fn finish(self, cycles: usize) -> String {
        let (settled, counts) = self.load.stop().await;
        let findings = bank::verify(&self.app, &settled).await;
        let summary = Summary {
            cycles,
            counts: &counts,
            findings: &findings,
        }
        .to_string();
        println!("faults: {summary}");
        assert!(
            counts.problems.is_empty(),
            "answers breaking the contract: {:#?}",
            &counts.problems[..counts.problems.len().min(20)]
        );
        assert!(
            findings.violations.is_empty(),
            "bank invariants broken: {:#?}",
            &findings.violations[..findings.violations.len().min(20)]
        );
        assert_eq!(findings.lost, 0, "acknowledged operations lost: {summary}");
        assert_eq!(
            findings.duplicated, 0,
            "operations recorded twice: {summary}"
        );
        assert_eq!(counts.other_5xx, 0, "5xx other than 503: {summary}");
        assert!(
            findings.transfers_applied > 0,
            "transfers applied under the faults: {summary}"
        );
        assert_eq!(
            counts.unclear_unavailable, 0,
            "503s without Retry-After or code SERVICE_UNAVAILABLE: {summary}"
        );
        assert!(
            counts.slowest_request <= REQUEST_TIMEOUT + HANG_MARGIN,
            "a request hung past its timeout: {summary}"
        );
        summary
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_killed_under_load_loses_nothing_and_applies_nothing_twice() {
    let mut harness = Harness::start().await;
    let cycles = 5;
    for _ in 0..cycles {
        harness.crash_service().await;
    }
    harness.finish(cycles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_crash_gets_prompt_503s_and_the_service_recovers_by_itself() {
    let mut harness = Harness::start().await;
    let cycles = 3;
    for _ in 0..cycles {
        harness.crash_database().await;
    }
    harness.finish(cycles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citus_worker_crash_gets_503s_and_the_service_recovers_by_itself() {
    if !on_citus() {
        eprintln!("skipped: the tests run on plain PostgreSQL (see scripts/citus-tests.sh)");
        return;
    }
    let mut harness = Harness::start_on_citus().await;
    // Each worker in turn: wherever the hot wallets' shards are, both kinds of transaction
    // (on one worker, and two-phase across both) meet a crash.
    let cycles = 4;
    for cycle in 0..cycles {
        let worker = 1 + cycle % 2;
        harness
            .crash_node(worker, &format!("Citus worker {worker}"))
            .await;
    }
    harness.finish(cycles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_connections_terminated_mid_batch_lose_nothing() {
    let harness = Harness::start().await;
    let mut admin = PgConnection::connect(&harness.database_url).await.unwrap();
    let wanted = 10;
    let mut terminated = 0;
    for _ in 0..100 {
        if terminated == wanted {
            break;
        }
        harness
            .load
            .wait_for_progress(10, "service after a writer connection was terminated")
            .await;
        // Only writers inside a transaction: the batch in flight dies with the connection.
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'wallet-writer' AND xact_start IS NOT NULL",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if count > 0 {
            terminated += 1;
        }
    }
    assert_eq!(terminated, wanted, "writers caught mid-batch");
    harness
        .load
        .wait_for_progress(PROGRESS, "service after the last termination")
        .await;
    harness.finish(terminated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_gets_bounded_503s_and_loses_nothing() {
    let harness = Harness::start().await;
    let hot = harness.load.wallets()[0];
    // Another session's locks stall the writers: first one hot wallet's row, then every
    // write (EXCLUSIVE lets reads through but no insert into operations).
    let stalls = [
        format!("SELECT id FROM wallets WHERE id = '{hot}' FOR UPDATE"),
        "LOCK TABLE operations IN EXCLUSIVE MODE".to_owned(),
    ];
    for stall in &stalls {
        let mut holder = PgConnection::connect(&harness.database_url).await.unwrap();
        let mut lock = holder.begin().await.unwrap();
        sqlx::query(stall).execute(&mut *lock).await.unwrap();
        let seen = harness.load.unavailable();
        harness
            .load
            .wait_for_unavailable(seen, &format!("503 while `{stall}` is held"))
            .await;
        // Held well past the request timeout, so requests queue behind it, time out, are
        // retried and time out again.
        tokio::time::sleep(3 * REQUEST_TIMEOUT).await;
        lock.rollback().await.unwrap();
        harness
            .load
            .wait_for_progress(PROGRESS, &format!("service after `{stall}` was released"))
            .await;
    }
    // A writer that gave up on a stalled attempt dropped its connection; PostgreSQL ends
    // that session (rolling back its transaction) once the lock lets it run and it finds the
    // client gone. None may linger, holding locks or connection slots.
    let mut db = PgConnection::connect(&harness.database_url).await.unwrap();
    let started = Instant::now();
    loop {
        let (writers,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wallet-writer'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        if writers <= WRITERS * SESSIONS_PER_WRITER {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{writers} writer sessions linger after the stalls, for {WRITERS} writers of \
             {SESSIONS_PER_WRITER} sessions each"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    harness.finish(stalls.len()).await;
}

/// Holds placed beside the load in the holds' crash test, on two wallets of their own.
const HOLDS: u64 = 16;

/// How long the holds' crash test waits for a timed hold to expire after the restarts: a
/// bound on a hang, not a timing expectation (expiry is due within about a second).
const EXPIRY_LIMIT: Duration = Duration::from_secs(30);

/// One hold of the holds' crash test: its id, source, destination (a transfer's) and amount.
type PlacedHold = (Uuid, Uuid, Option<Uuid>, u64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_killed_with_holds_pending_expires_or_confirms_each_exactly_once() {
    let mut harness = Harness::start().await;
    let app = Arc::new(harness.service.app());
    // The load's checks cover its own wallets; the ledger's invariants cover these too.
    let initial = 1_000;
    let wallets = [
        app.funded_wallet(initial).await,
        app.funded_wallet(initial).await,
    ];
    // A quarter each: withdrawals and transfers, with a timeout of 1 or 3 seconds (running
    // out while the service is down or soon after it is back) or none.
    let (mut timed, mut untimed): (Vec<PlacedHold>, Vec<PlacedHold>) = (Vec::new(), Vec::new());
    for n in 0..HOLDS {
        let (from, other) = (wallets[(n % 2) as usize], wallets[1 - (n % 2) as usize]);
        let to = (n % 4 >= 2).then_some(other);
        let timeout = (n % 8 < 4).then_some(if n % 2 == 0 { 1 } else { 3 });
        let (id, amount) = (Uuid::new_v4(), 10 + n);
        let (path, body) = match to {
            None => (
                "/api/v1/wallet",
                operation_body(from, "WITHDRAW", amount, Some(id)),
            ),
            Some(to) => (
                "/api/v1/transfers",
                transfer_body(from, to, amount, Some(id)),
            ),
        };
        let answer = bank::post_until_answered(&app, path, Some(&pending(body, timeout))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.json()["status"], "PENDING", "{}", answer.text());
        let placed = (id, from, to, amount);
        if timeout.is_some() {
            timed.push(placed);
        } else {
            untimed.push(placed);
        }
    }

    harness.crash_service().await;
    // Each untimed hold is confirmed while the service is killed once more; each confirm is
    // sent until it is answered.
    let confirms: JoinSet<_> = untimed
        .iter()
        .map(|&(id, ..)| {
            let app = app.clone();
            let path = format!("/api/v1/holds/{id}/confirm");
            async move { (id, bank::post_until_answered(&app, &path, None).await) }
        })
        .collect();
    harness.crash_service().await;

    for (id, answer) in confirms.join_all().await {
        // The first answer may be a replay, when a crash cut off the one before.
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "hold {id}: {}",
            answer.text()
        );
        assert_eq!(answer.json()["status"], "CONFIRMED", "{}", answer.text());
        let again = app.confirm_hold(id, None).await;
        assert_eq!(again.status, StatusCode::OK, "hold {id}: {}", again.text());
        assert_eq!(again.replayed(), Some("true"), "hold {id}: confirmed once");
    }
    for &(id, ..) in &timed {
        app.wait_for_hold_status(id, "EXPIRED", EXPIRY_LIMIT).await;
    }
    let mut balances = [initial; 2];
    for &(_, from, to, amount) in &untimed {
        let index = |wallet| wallets.iter().position(|w| *w == wallet).unwrap();
        balances[index(from)] -= amount;
        if let Some(to) = to {
            balances[index(to)] += amount;
        }
    }
    for (wallet, balance) in wallets.into_iter().zip(balances) {
        assert_eq!(app.funds(wallet).await, (balance, 0, balance), "{wallet}");
        // Funding, each hold placed and each resolution, once.
        let held_here = timed.iter().chain(&untimed).filter(|h| h.1 == wallet);
        let incoming = untimed.iter().filter(|h| h.2 == Some(wallet)).count();
        let entries = 1 + 2 * held_here.count() + incoming;
        assert_eq!(app.history(wallet).await.len(), entries, "{wallet}");
    }
    // The ledger's invariants (one resolution entry per hold among them) and the load's.
    harness.finish(2).await;
}

/// `scripts/soak.sh`: `SOAK_CYCLES` crash cycles (default 20), the service's `kill -9` and
/// the database's immediate stop in turn, with `SOAK_LOAD` definitive answers (default
/// 1000) between faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by scripts/soak.sh"]
async fn soak_alternating_service_and_database_crashes() {
    let cycles = setting("SOAK_CYCLES", 20);
    let load = setting("SOAK_LOAD", 1000);
    let mut harness = Harness::start().await;
    for cycle in 0..cycles {
        harness
            .load
            .wait_for_progress(load, "load between faults")
            .await;
        if cycle % 2 == 0 {
            harness.crash_service().await;
        } else {
            harness.crash_database().await;
        }
    }
    harness.finish(cycles).await;
}

/// A number from the environment, or `default` when unset.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).map_or(default, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}"))
    })
}
