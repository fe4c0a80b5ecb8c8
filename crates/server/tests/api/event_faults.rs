//! Fault tests of the event stream. The real service binary publishes to RabbitMQ while
//! clients keep it under load, retrying every outcome they did not see with the same id
//! (`helpers::bank`), and something breaks: the service is killed, the broker is cut off,
//! PostgreSQL restarts, the broker itself is stopped and started (`rabbitmqctl`), or the
//! instance whose relay is active dies beside another. A consumer
//! on the real broker then must have received an event for every change a client was told
//! of (every 200 or 409, by its `operationId`, `transferId` or `holdId` and its type), and
//! for nothing else; duplicates are allowed (at least once, deduplicated by event id), and
//! each wallet's events must have arrived in its commit order
//! ([`assert_each_wallets_order`]).

use crate::helpers::bank::{self, Counts, Settled, Workload};
use crate::helpers::events::{
    BrokerProxy, EventConsumer, Funds, Received, assert_each_wallets_order, broker_to_oneself,
    broker_url, distinct,
};
use crate::helpers::metrics::scrape;
use crate::helpers::pg_cluster::PgCluster;
use crate::helpers::{
    ServerProcess, TestApp, eventually, free_port, operation_body, pending, transfer_body,
};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// Longest the events of the acknowledged changes may take to arrive once the fault is over:
/// a bound on a hang (the relay backs off up to 5 s between attempts), not a timing
/// expectation.
const ARRIVAL: Duration = Duration::from_secs(60);

/// How long a relay may take to become active: a bound on a hang (a waiting relay tries for
/// the lock every second).
const TAKEOVER: Duration = Duration::from_secs(30);

/// How long the broker stays cut off in the outage test.
const OUTAGE: Duration = Duration::from_secs(5);

/// Hot wallets, clients and each wallet's first deposit, as in the fault tests: batches
/// collide on the same rows and some withdrawals are rejected.
const WALLETS: usize = 3;
const CLIENTS: u64 = 16;
const INITIAL_BALANCE: u64 = 100;

/// Definitive answers that show the service serves (again).
const PROGRESS: u64 = 50;

/// The service's request timeout where the database goes away: short, so that requests get
/// their 503 promptly.
const SHORT_REQUEST_TIMEOUT: &str = "1000";

const RELAY_ACTIVE: &str = "wallet_events_relay_active";
const OUTBOX_BACKLOG: &str = "wallet_events_outbox_backlog";

/// A change a client was told of, as its event names it: its id and the event type.
type Change = (Uuid, String);

/// The flags of a service on the fixed `http_addr` (kept across restarts) publishing to
/// `broker`, and `extra`.
fn flags<'a>(http_addr: &'a str, broker: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--http-addr",
        http_addr,
        "--events-amqp-url",
        broker,
        "--shards",
        "2",
        "--db-pool-size",
        "4",
        "--log",
        "info,sqlx=warn",
    ];
    flags.extend_from_slice(extra);
    flags
}

/// A free address on 127.0.0.1, for a service to keep across restarts.
fn fixed_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// The events the load's acknowledged operations must have published.
fn changes_of(settled: &[Settled]) -> HashSet<Change> {
    settled
        .iter()
        .map(|op| {
            let kind = match (op.is_transfer(), op.applied()) {
                (false, true) => "operation.applied",
                (false, false) => "operation.rejected",
                (true, true) => "transfer.applied",
                (true, false) => "transfer.rejected",
            };
            (op.id(), kind.to_owned())
        })
        .collect()
}

fn change(event: &Received) -> Option<Change> {
    Some((event.subject()?, event.kind().to_owned()))
}

/// Waits until an event of each of `expected` arrived among the events about `wallets`.
/// Panics after [`ARRIVAL`], naming what is missing.
async fn wait_for_changes(consumer: &EventConsumer, wallets: &[Uuid], expected: &HashSet<Change>) {
    let started = Instant::now();
    loop {
        let arrived = distinct(consumer.about(wallets));
        let seen: HashSet<Change> = arrived.iter().filter_map(change).collect();
        let missing: Vec<&Change> = expected.difference(&seen).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < ARRIVAL,
            "{} of {} acknowledged changes have no event after {ARRIVAL:?}, e.g. {:?}",
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The end check: every change in `expected` has its event, nothing else about `wallets`
/// was published, each wallet's events arrived in its commit order, and add up to the
/// funds the API shows. Returns a line of counts.
async fn assert_events_tell_exactly(
    consumer: &EventConsumer,
    app: &TestApp,
    wallets: &[Uuid],
    expected: &HashSet<Change>,
) -> String {
    wait_for_changes(consumer, wallets, expected).await;
    // Anything more would have been published with the rest: give it a moment to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = consumer.about(wallets);
    let arrived = distinct(received.clone());
    let seen: HashSet<Change> = arrived.iter().filter_map(change).collect();
    let unasked: Vec<&Change> = seen.difference(expected).collect();
    assert!(
        unasked.is_empty(),
        "events of changes no client was told of: {:?}",
        &unasked[..unasked.len().min(10)]
    );
    assert_eq!(arrived.len(), seen.len(), "one event id per change");
    let funds = assert_each_wallets_order(&arrived, wallets);
    for &wallet in wallets {
        let (balance, _, available) = app.funds(wallet).await;
        assert_eq!(
            funds[&wallet],
            Funds { balance, available },
            "wallet {wallet}: its events add up to its funds"
        );
    }
    format!(
        "changes={} events_received={} duplicates={}",
        expected.len(),
        received.len(),
        received.len() - arrived.len()
    )
}

/// Waits until the broker has been out of the service's reach for [`OUTAGE`] since `since`
/// and the service's backlog metric shows events waiting; returns the backlog.
async fn backlog_after_outage(service: &ServerProcess, since: Instant) -> f64 {
    eventually(
        "the backlog while the broker is away",
        ARRIVAL,
        async || {
            let backlog = scrape(service.admin_addr()).await.sum(OUTBOX_BACKLOG, &[]);
            (since.elapsed() >= OUTAGE && backlog > 0.0).then_some(backlog)
        },
    )
    .await
}

/// Once the broker is back: the load goes on, no client got a 503 at any time (only the
/// broker was away), and the events tell exactly what the clients were told. Returns a line
/// of counts.
async fn finish_after_broker_outage(
    load: Workload,
    consumer: &EventConsumer,
    app: &TestApp,
) -> String {
    load.wait_for_progress(PROGRESS, "load after the outage")
        .await;
    let wallets = load.wallets().to_vec();
    let (settled, counts) = load.stop().await;
    assert_answers_clean(&counts);
    assert_eq!(counts.unavailable, 0, "no 503 at all: {counts:?}");
    assert_events_tell_exactly(consumer, app, &wallets, &changes_of(&settled)).await
}

/// The clients' answers broke no rule: no problem, no 5xx but 503.
fn assert_answers_clean(counts: &Counts) {
    assert!(
        counts.problems.is_empty(),
        "answers breaking the contract: {:#?}",
        &counts.problems[..counts.problems.len().min(20)]
    );
    assert_eq!(counts.other_5xx, 0, "5xx other than 503: {counts:?}");
}

/// A client of holds beside the load, on two wallets of its own: it places pending
/// withdrawals and transfers one after the other, confirms (in part or whole) or voids each,
/// or gives a quarter of them a timeout of a second and lets them expire. Every request is
/// sent until answered; each must succeed.
struct HoldClient {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(Vec<Change>, Vec<Uuid>)>,
    wallets: [Uuid; 2],
    app: Arc<TestApp>,
}

impl HoldClient {
    async fn start(app: TestApp) -> Self {
        let app = Arc::new(app);
        let wallets = [Uuid::new_v4(), Uuid::new_v4()];
        let stop = Arc::new(AtomicBool::new(false));
        let mut changes = Vec::new();
        for wallet in wallets {
            let id = Uuid::new_v4();
            let body = operation_body(wallet, "DEPOSIT", 1_000_000, Some(id));
            let answer = bank::post_until_answered(&app, "/api/v1/wallet", Some(&body)).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            changes.push((id, "operation.applied".to_owned()));
        }
        let task = tokio::spawn(run_holds(app.clone(), wallets, stop.clone(), changes));
        Self {
            stop,
            task,
            wallets,
            app,
        }
    }

    /// Stops after the hold in hand, waits for the timed holds to expire, and returns the
    /// changes the client was told of (and the expiries it saw).
    async fn stop(self) -> HashSet<Change> {
        self.stop.store(true, Ordering::Relaxed);
        let (mut changes, timed) = self.task.await.expect("the hold client");
        for id in timed {
            self.app.wait_for_hold_status(id, "EXPIRED", ARRIVAL).await;
            changes.push((id, "hold.expired".to_owned()));
        }
        changes.into_iter().collect()
    }
}

async fn run_holds(
    app: Arc<TestApp>,
    wallets: [Uuid; 2],
    stop: Arc<AtomicBool>,
    mut changes: Vec<Change>,
) -> (Vec<Change>, Vec<Uuid>) {
    let mut timed = Vec::new();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (from, to) = (wallets[(n % 2) as usize], wallets[1 - (n % 2) as usize]);
        let (id, amount) = (Uuid::new_v4(), 1 + n % 10);
        let timeout = n.is_multiple_of(4).then_some(1);
        let (path, body) = if n.is_multiple_of(3) {
            (
                "/api/v1/transfers",
                transfer_body(from, to, amount, Some(id)),
            )
        } else {
            (
                "/api/v1/wallet",
                operation_body(from, "WITHDRAW", amount, Some(id)),
            )
        };
        let placed = bank::post_until_answered(&app, path, Some(&pending(body, timeout))).await;
        assert_eq!(
            placed.status,
            StatusCode::OK,
            "hold {id}: {}",
            placed.text()
        );
        changes.push((id, "hold.pending".to_owned()));
        if timeout.is_some() {
            timed.push(id);
            continue;
        }
        let (decision, body, kind) = match n % 4 {
            1 => ("confirm", None, "hold.confirmed"),
            2 => ("confirm", Some(json!({"amount": 1})), "hold.confirmed"),
            _ => ("void", None, "hold.voided"),
        };
        let path = format!("/api/v1/holds/{id}/{decision}");
        let decided = bank::post_until_answered(&app, &path, body.as_ref()).await;
        assert_eq!(
            decided.status,
            StatusCode::OK,
            "hold {id}: {}",
            decided.text()
        );
        changes.push((id, kind.to_owned()));
    }
    (changes, timed)
}

/// The load and the hold client on one service, stopped and checked together.
struct Load {
    workload: Workload,
    holds: HoldClient,
}

impl Load {
    async fn start(app: &TestApp, holds: TestApp) -> Self {
        let workload = Workload::start(app, WALLETS, CLIENTS, INITIAL_BALANCE).await;
        let holds = HoldClient::start(holds).await;
        workload
            .wait_for_progress(PROGRESS, "load before the first fault")
            .await;
        Self { workload, holds }
    }

    /// Stops the clients, checks their answers and then the events; returns a line of
    /// counts.
    async fn finish(self, consumer: &EventConsumer, app: &TestApp) -> String {
        let mut wallets = self.workload.wallets().to_vec();
        wallets.extend(self.holds.wallets);
        let (settled, counts) = self.workload.stop().await;
        assert_answers_clean(&counts);
        let mut expected = changes_of(&settled);
        expected.extend(self.holds.stop().await);
        assert_events_tell_exactly(consumer, app, &wallets, &expected).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_killed_under_load_loses_no_event_and_keeps_each_wallets_order() {
    let consumer = EventConsumer::start().await;
    let (http_addr, broker) = (fixed_addr(), broker_url());
    let mut service = ServerProcess::start(&flags(&http_addr, &broker, &[])).await;
    let app = service.app();
    let load = Load::start(&app, service.app()).await;
    let mut db = PgConnection::connect(service.database_url()).await.unwrap();
    let (cycles, mut left_behind) = (5, 0);
    for _ in 0..cycles {
        service.kill().await;
        // Events committed but not yet published, or published but not yet deleted, wait
        // in the outbox for the next run.
        let (waiting,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
            .fetch_one(&mut db)
            .await
            .unwrap();
        left_behind += waiting;
        tokio::time::sleep(Duration::from_millis(200)).await;
        service.restart().await;
        load.workload
            .wait_for_progress(PROGRESS, "service restarted after kill -9")
            .await;
    }
    let _ = db.close().await;
    assert!(left_behind > 0, "no kill left an event to publish");
    let summary = load.finish(&consumer, &app).await;
    println!("event_faults kill -9: cycles={cycles} left_behind={left_behind} {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_keeps_the_api_answering_and_the_outbox_delivers_afterwards() {
    let consumer = EventConsumer::start().await;
    let proxy = BrokerProxy::start().await;
    let http_addr = fixed_addr();
    let service = ServerProcess::start(&flags(&http_addr, proxy.url(), &[])).await;
    let app = service.app();
    let load = Workload::start(&app, WALLETS, CLIENTS, INITIAL_BALANCE).await;
    let wallets = load.wallets().to_vec();
    // The relay publishes through the proxy.
    eventually("events published through the proxy", ARRIVAL, async || {
        (!consumer.about(&wallets).is_empty()).then_some(())
    })
    .await;
    assert!(proxy.accepted() > 0, "the relay connects through the proxy");

    proxy.cut();
    let cut = Instant::now();
    // A round whose confirms were on their way may still be deleted; after this pause the
    // relay can delete nothing more, and at most one operation per client is in flight.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (acknowledged, unavailable) = (load.acknowledged(), load.unavailable());
    load.wait_for_progress(PROGRESS, "answers while the broker is away")
        .await;
    let backlog = backlog_after_outage(&service, cut).await;
    let answered_during = load.acknowledged() - acknowledged;
    let mut db = PgConnection::connect(service.database_url()).await.unwrap();
    let (waiting,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let _ = db.close().await;
    assert_eq!(
        load.unavailable(),
        unavailable,
        "503s while only the broker was away"
    );
    // Each operation answered after the pause committed after the cut (but for those in
    // flight at the pause), and has its event waiting.
    let waiting = u64::try_from(waiting).unwrap();
    assert!(
        waiting + CLIENTS >= answered_during,
        "{waiting} events in the outbox for {answered_during} operations answered while the \
         broker was away"
    );
    proxy.restore();
    println!(
        "event_faults outage: {:?} cut off, {answered_during} operations answered, outbox \
         {waiting}, backlog metric {backlog}",
        cut.elapsed()
    );

    let summary = finish_after_broker_outage(load, &consumer, &app).await;
    // And the outbox is empty again.
    eventually("the outbox drained", ARRIVAL, async || {
        let backlog = scrape(service.admin_addr()).await.sum(OUTBOX_BACKLOG, &[]);
        (backlog == 0.0).then_some(())
    })
    .await;
    println!("event_faults outage: {summary}");
}

/// Runs `rabbitmqctl` with `args` (the local broker's application, as root or its owner).
fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl runs (the test stops and starts the local RabbitMQ)");
    assert!(status.success(), "rabbitmqctl {args:?}: {status}");
}

/// Starts the broker's application again when dropped, also when the test fails.
struct StoppedBroker;

impl StoppedBroker {
    fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        Self
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

/// RabbitMQ itself stopped (`rabbitmqctl stop_app`) for several seconds under load, then
/// started again: the API answers throughout, the outbox keeps the events, and once the
/// broker is back every one arrives in order (the consumer reads a durable queue of its own,
/// which keeps what reached it across the restart). The other event tests wait meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_and_started_under_load_loses_no_event() {
    let _alone = broker_to_oneself().await;
    let consumer = EventConsumer::start_durable().await;
    let http_addr = fixed_addr();
    let broker = broker_url();
    let service = ServerProcess::start(&flags(&http_addr, &broker, &[])).await;
    let app = service.app();
    let load = Workload::start(&app, WALLETS, CLIENTS, INITIAL_BALANCE).await;
    let wallets = load.wallets().to_vec();
    eventually("events published", ARRIVAL, async || {
        (!consumer.about(&wallets).is_empty()).then_some(())
    })
    .await;

    let stopped = StoppedBroker::stop();
    let since = Instant::now();
    let unavailable = load.unavailable();
    load.wait_for_progress(PROGRESS, "answers while the broker is stopped")
        .await;
    let backlog = backlog_after_outage(&service, since).await;
    assert_eq!(
        load.unavailable(),
        unavailable,
        "503s while only the broker was stopped"
    );
    drop(stopped);
    println!(
        "event_faults broker restart: stopped for {:?}, backlog metric {backlog}",
        since.elapsed()
    );

    let summary = finish_after_broker_outage(load, &consumer, &app).await;
    consumer.delete_queue().await;
    println!("event_faults broker restart: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_under_load_loses_no_event_and_keeps_each_wallets_order() {
    let consumer = EventConsumer::start().await;
    let cluster = PgCluster::start();
    let (http_addr, broker) = (fixed_addr(), broker_url());
    let flags = flags(
        &http_addr,
        &broker,
        &["--request-timeout-ms", SHORT_REQUEST_TIMEOUT],
    );
    let mut service = ServerProcess::start_on(&cluster.url("wallet"), &flags).await;
    let app = service.app();
    let load = Load::start(&app, service.app()).await;
    let cycles = 2;
    for _ in 0..cycles {
        let seen = load.workload.unavailable();
        cluster.stop_immediate();
        load.workload
            .wait_for_unavailable(seen, "503 while the database is down")
            .await;
        cluster.start_server();
        load.workload
            .wait_for_progress(PROGRESS, "service after the database restarted")
            .await;
        assert!(service.is_running(), "the service recovers by itself");
    }
    let summary = load.finish(&consumer, &app).await;
    println!("event_faults database restart: cycles={cycles} {summary}");
}

/// Each instance's `wallet_events_relay_active`.
async fn relays_active(instances: &[ServerProcess]) -> Vec<f64> {
    let mut active = Vec::new();
    for instance in instances {
        active.push(scrape(instance.admin_addr()).await.sum(RELAY_ACTIVE, &[]));
    }
    active
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_is_active_per_database_and_another_takes_over_when_it_dies() {
    let consumer = EventConsumer::start().await;
    let broker = broker_url();
    let addrs = [fixed_addr(), fixed_addr()];
    let first = ServerProcess::start(&flags(&addrs[0], &broker, &[])).await;
    let second =
        ServerProcess::start_on(first.database_url(), &flags(&addrs[1], &broker, &[])).await;
    let mut instances = [first, second];
    let active = eventually("one relay active", TAKEOVER, async || {
        let relays = relays_active(&instances).await;
        if relays.iter().sum::<f64>() != 1.0 {
            return None;
        }
        relays.iter().position(|relay| *relay == 1.0)
    })
    .await;
    let apps = [instances[0].app(), instances[1].app()];
    let load =
        Workload::start_across(&[&apps[0], &apps[1]], WALLETS, CLIENTS, INITIAL_BALANCE).await;
    load.wait_for_progress(PROGRESS, "load through both instances")
        .await;
    // Never two, never none, while both run.
    for _ in 0..5 {
        let relays = relays_active(&instances).await;
        assert_eq!(relays.iter().sum::<f64>(), 1.0, "relays active: {relays:?}");
        assert_eq!(relays[active], 1.0, "the active relay stays: {relays:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    instances[active].kill().await;
    let survivor = 1 - active;
    eventually("the survivor's relay takes over", TAKEOVER, async || {
        let relay = scrape(instances[survivor].admin_addr())
            .await
            .sum(RELAY_ACTIVE, &[]);
        (relay == 1.0).then_some(())
    })
    .await;
    // Writes after the kill are published by the survivor: they arrive while the killed
    // instance is still down.
    let wallet = Uuid::new_v4();
    let mut after = HashSet::new();
    for _ in 0..10 {
        let id = Uuid::new_v4();
        let body = operation_body(wallet, "DEPOSIT", 10, Some(id));
        let answer =
            bank::post_until_answered(&apps[survivor], "/api/v1/wallet", Some(&body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        after.insert((id, "operation.applied".to_owned()));
    }
    wait_for_changes(&consumer, &[wallet], &after).await;
    load.wait_for_progress(PROGRESS, "load through the survivor")
        .await;

    // Back, the killed instance waits: its clients settle what they had in flight.
    instances[active].restart().await;
    load.wait_for_progress(PROGRESS, "load through both instances again")
        .await;
    let relays = relays_active(&instances).await;
    assert_eq!(
        relays[survivor], 1.0,
        "the survivor stays active: {relays:?}"
    );
    assert_eq!(relays[active], 0.0, "the restarted one waits: {relays:?}");

    let mut wallets = load.wallets().to_vec();
    let (settled, counts) = load.stop().await;
    assert_answers_clean(&counts);
    let mut expected = changes_of(&settled);
    expected.extend(after);
    wallets.push(wallet);
    let summary = assert_events_tell_exactly(&consumer, &apps[survivor], &wallets, &expected).await;
    println!("event_faults two instances: {summary}");
}
