//! Many requests on ONE wallet at once: every balance exact, no 5xx.

use crate::helpers::{TestApp, kind, operation_body, spawn_app_with};
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
    assert_eq!(apps[0].balance(wallet).await, expected);
    let history = apps[0].history(wallet).await;
    assert_eq!(
        history.len(),
        5001,
        "every request and the funding are recorded"
    );
    let from_history: i64 = history
        .iter()
        .filter(|op| op["status"] == "APPLIED")
        .map(|op| {
            let amount = op["amount"].as_i64().unwrap();
            if op["operationType"] == "DEPOSIT" {
                amount
            } else {
                -amount
            }
        })
        .sum();
    assert_eq!(from_history as u64, expected);
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
