//! Many requests on ONE wallet, or transfers among a few, at once: every balance exact,
//! money conserved, no 5xx.

use crate::helpers::{
    Reply, ServerProcess, TestApp, kind, operation_body, spawn_app_with, transfer_body,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reqwest::StatusCode;
use std::sync::Arc;
use tokio::task::JoinSet;
use uuid::Uuid;

/// A request deadline far beyond any of these loads: they test exactness, and on a loaded
/// machine (other tests, a shared database server) a queue of single-row transactions may
/// wait longer than the default deadline, whose 503s other tests cover.
const PATIENT: [&str; 2] = ["--request-timeout-ms", "60000"];

/// Sends `count` copies of a request at once and returns their statuses.
async fn concurrently<F, Fut>(count: usize, send: F) -> Vec<StatusCode>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = reqwest::Response> + Send + 'static,
{
    let tasks: JoinSet<_> = (0..count).map(send).collect();
    tasks.join_all().await.iter().map(|r| r.status()).collect()
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_deposits_sum_exactly() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let wallet = app.funded_wallet(0).await;
    let statuses = concurrently(1000, |i| {
        let app = app.clone();
        async move { app.deposit(wallet, i as u64 + 1).await }
    })
    .await;
    assert_eq!(count(&statuses, StatusCode::OK), 1000);
    assert_eq!(app.balance(wallet).await, 1000 * 1001 / 2);
    assert_eq!(app.history(wallet).await.len(), 1000);
    app.assert_ledger_consistent().await;
}

/// Sends `withdrawals` withdrawals of `amount` at once from a wallet holding `balance` (a
/// multiple of `amount`): exactly `balance / amount` succeed, the rest are refused with 409,
/// and the wallet ends empty.
async fn racing_withdrawals_empty_the_wallet_exactly(
    app: TestApp,
    balance: u64,
    withdrawals: usize,
    amount: u64,
) {
    let app = Arc::new(app);
    let wallet = app.funded_wallet(balance).await;
    let statuses = concurrently(withdrawals, |_| {
        let app = app.clone();
        async move { app.withdraw(wallet, amount).await }
    })
    .await;
    let succeeded = (balance / amount) as usize;
    assert_eq!(count(&statuses, StatusCode::OK), succeeded, "{statuses:?}");
    assert_eq!(
        count(&statuses, StatusCode::CONFLICT),
        withdrawals - succeeded
    );
    assert_eq!(app.balance(wallet).await, 0);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_withdrawals_of_50_from_100_exactly_two_succeed() {
    racing_withdrawals_empty_the_wallet_exactly(spawn_app_with(&PATIENT).await, 100, 3, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_withdrawals_of_1_from_100_exactly_100_succeed() {
    racing_withdrawals_empty_the_wallet_exactly(spawn_app_with(&PATIENT).await, 100, 200, 1).await;
}

/// Acknowledged deposits minus acknowledged withdrawals, over one worker's requests.
async fn mixed_worker(
    apps: Arc<Vec<TestApp>>,
    wallet: Uuid,
    worker: usize,
    requests: usize,
) -> i64 {
    let mut net = 0_i64;
    for i in 0..requests {
        let app = &apps[(worker + i) % apps.len()];
        let amount = (worker * 7 + i * 13) % 50 + 1;
        let deposit = (worker + i).is_multiple_of(2);
        let body = operation_body(wallet, kind(deposit), amount as u64, Some(Uuid::new_v4()));
        let response = app.operation(&body).await;
        match response.status() {
            StatusCode::OK if deposit => net += amount as i64,
            StatusCode::OK => net -= amount as i64,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected status {other}"),
        }
    }
    net
}

/// Runs 5000 mixed requests from 50 workers against `apps` (round robin) on one wallet and
/// checks balance = initial + acknowledged deposits - acknowledged withdrawals = history.
async fn mixed_load_is_exact(apps: Vec<TestApp>) {
    let initial = 1_000;
    let wallet = apps[0].funded_wallet(initial).await;
    let apps = Arc::new(apps);
    let workers: JoinSet<_> = (0..50)
        .map(|w| mixed_worker(apps.clone(), wallet, w, 100))
        .collect();
    let net: i64 = workers.join_all().await.into_iter().sum();

    let expected = (initial as i64 + net) as u64;
    assert_eq!(apps[0].assert_history_adds_up(wallet).await, expected);
    assert_eq!(
        apps[0].history(wallet).await.len(),
        5001,
        "every request and the funding are recorded"
    );
    apps[0].assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_mixed_requests_from_50_workers_are_exact_with_no_5xx() {
    mixed_load_is_exact(vec![spawn_app_with(&PATIENT).await]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_stay_exact_on_one_wallet() {
    let first = spawn_app_with(&PATIENT).await;
    let second = first.spawn_beside(&PATIENT).await;
    mixed_load_is_exact(vec![first, second]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transaction_per_request_mode_is_exact_too() {
    let app = spawn_app_with(&[PATIENT[0], PATIENT[1], "--max-batch", "1"]).await;
    racing_withdrawals_empty_the_wallet_exactly(app, 100, 200, 1).await;
}

// ---------------------------------------------------------------- transfers

/// `PATIENT` for a server process, with the in-process apps' writers and pool.
const PATIENT_PROCESS: [&str; 6] = [
    PATIENT[0],
    PATIENT[1],
    "--shards",
    "2",
    "--db-pool-size",
    "4",
];

/// A transfer with a new id; its status, which must be a decision (200 or 409).
async fn decided_transfer(app: &TestApp, from: Uuid, to: Uuid, amount: u64) -> StatusCode {
    let body = transfer_body(from, to, amount, Some(Uuid::new_v4()));
    let answer = Reply::of(app.transfer(&body).await).await;
    assert!(
        [StatusCode::OK, StatusCode::CONFLICT].contains(&answer.status),
        "transfer {body}: {} {}",
        answer.status,
        answer.text()
    );
    answer.status
}

/// `count` wallets holding `balance` each.
async fn funded_wallets(app: &TestApp, count: usize, balance: u64) -> Vec<Uuid> {
    let mut wallets = Vec::with_capacity(count);
    for _ in 0..count {
        wallets.push(app.funded_wallet(balance).await);
    }
    wallets
}

/// Random requests on `wallets`, most of them transfers between two of them, some deposits
/// and withdrawals; returns acknowledged deposits minus acknowledged withdrawals.
async fn transfer_worker(app: Arc<TestApp>, wallets: Arc<Vec<Uuid>>, seed: u64) -> i64 {
    let mut random = SmallRng::seed_from_u64(seed);
    let mut net = 0;
    for _ in 0..25 {
        let n = wallets.len();
        let first = random.random_range(0..n);
        let amount = random.random_range(1..=60);
        match random.random_range(0..10) {
            0 | 1 => {
                let deposit = random.random_bool(0.5);
                let body = operation_body(wallets[first], kind(deposit), amount, None);
                let (status, signed) = (app.operation(&body).await.status(), amount as i64);
                match status {
                    StatusCode::OK if deposit => net += signed,
                    StatusCode::OK => net -= signed,
                    StatusCode::CONFLICT if !deposit => {}
                    other => panic!("{body}: {other}"),
                }
            }
            _ => {
                let to = wallets[(first + random.random_range(1..n)) % n];
                decided_transfer(&app, wallets[first], to, amount).await;
            }
        }
    }
    net
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_transfers_among_40_wallets_from_32_workers_conserve_money() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let initial = 100;
    let wallets = Arc::new(funded_wallets(&app, 40, initial).await);

    let workers: JoinSet<_> = (0..32)
        .map(|seed| transfer_worker(app.clone(), wallets.clone(), seed))
        .collect();
    let net: i64 = workers.join_all().await.into_iter().sum();

    let mut total = 0;
    for &wallet in wallets.iter() {
        total += app.assert_history_adds_up(wallet).await as i64;
    }
    assert_eq!(
        total,
        40 * initial as i64 + net,
        "sum of balances == deposits - withdrawals"
    );
    app.assert_ledger_consistent().await;
}

/// Sends 200 transfers of 1 to 7 between two wallets holding 100 each, half each way, all at
/// once, spread over `apps` (round robin): every one decided, and each balance is exactly
/// what the applied ones add up to.
async fn crossing_transfers_are_exact(apps: Vec<TestApp>) {
    let apps = Arc::new(apps);
    let (a, b) = (
        apps[0].funded_wallet(100).await,
        apps[0].funded_wallet(100).await,
    );
    let tasks: JoinSet<_> = (0..200_usize)
        .map(|i| {
            let apps = apps.clone();
            // Both directions go through every instance.
            let app_index = (i / 2) % apps.len();
            let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
            let amount = (i % 7 + 1) as i64;
            async move {
                let status = decided_transfer(&apps[app_index], from, to, amount as u64).await;
                let moved = if status == StatusCode::OK { amount } else { 0 };
                if from == a { -moved } else { moved }
            }
        })
        .collect();
    let into_a: i64 = tasks.join_all().await.into_iter().sum();

    let expected_a = (100 + into_a) as u64;
    assert_eq!(apps[0].assert_history_adds_up(a).await, expected_a);
    assert_eq!(apps[0].assert_history_adds_up(b).await, 200 - expected_a);
    apps[0].assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_transfers_both_ways_between_two_wallets_are_exact() {
    crossing_transfers_are_exact(vec![spawn_app_with(&PATIENT).await]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_processes_on_one_database_stay_exact_under_crossing_transfers() {
    let first = ServerProcess::start(&PATIENT_PROCESS).await;
    let second = ServerProcess::start_on(first.database_url(), &PATIENT_PROCESS).await;
    crossing_transfers_are_exact(vec![first.app(), second.app()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_payers_paying_one_merchant_at_once_are_exact() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let merchant = app.funded_wallet(0).await;
    let payers = funded_wallets(&app, 50, 10).await;

    // Each payer sends two payments of 6 at once: exactly one fits in its 10.
    let statuses = concurrently(100, |i| {
        let (app, payer) = (app.clone(), payers[i / 2]);
        async move { app.transfer(&transfer_body(payer, merchant, 6, None)).await }
    })
    .await;

    assert_eq!(count(&statuses, StatusCode::OK), 50, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::CONFLICT), 50);
    assert_eq!(app.assert_history_adds_up(merchant).await, 300);
    assert_eq!(app.history(merchant).await.len(), 50);
    for &payer in &payers {
        assert_eq!(app.assert_history_adds_up(payer).await, 4);
    }
    app.assert_ledger_consistent().await;
}
