//! The writers' database connections are killed under load: nothing acknowledged is lost,
//! nothing is applied twice, and the service recovers by itself.

use crate::helpers::bank::{self, Workload};
use crate::helpers::database::server_url;
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_writer_connections_loses_nothing_and_applies_nothing_twice() {
    let app = spawn_app().await;
    // Sixteen clients on one wallet, each retrying an operation with its id until it gets a
    // definitive answer.
    let load = Workload::start(&app, 1, 16, 10_000).await;
    let wallet = load.wallets()[0];
    let db = app.db().await;

    let mut killed = 0;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'wallet-writer'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        killed += count;
    }
    let (settled, counts) = load.stop().await;
    assert!(killed >= 10, "the test killed {killed} writer connections");
    assert!(
        counts.problems.is_empty(),
        "answers breaking the contract: {:#?}",
        counts.problems
    );
    assert_eq!(counts.other_5xx, 0, "5xx other than 503: {counts:?}");
    assert_eq!(
        counts.unclear_unavailable, 0,
        "503s without Retry-After: {counts:?}"
    );
    let findings = bank::verify(&app, &settled).await;
    // Beyond the funding deposit.
    let applied = findings.applied - 1;
    assert!(applied > 100, "only {applied} operations went through");
    // Every acknowledged operation recorded once, as answered, and nothing else; balances
    // equal the acknowledged net and the replayed history.
    assert_eq!(
        findings.lost, 0,
        "acknowledged operations lost: {findings:?}"
    );
    assert_eq!(
        findings.duplicated, 0,
        "operations recorded twice: {findings:?}"
    );
    assert!(
        findings.violations.is_empty(),
        "ledger invariants broken: {:#?}",
        findings.violations
    );

    // The service recovered without a restart.
    let before = app.balance(wallet).await;
    assert_eq!(app.deposit(wallet, 1).await.status(), StatusCode::OK);
    assert_eq!(app.balance(wallet).await, before + 1);
    app.assert_ledger_consistent().await;
}

/// Allows or refuses new connections to the test's database and drops the current ones,
/// from outside it: the database is "down" for the service while it refuses.
async fn set_reachable(app: &TestApp, reachable: bool) {
    let name = app.database_url.rsplit('/').next().unwrap();
    let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {reachable}"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    if !reachable {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_gets_503_with_retry_after_and_the_service_recovers() {
    let app = spawn_app_with(&["--request-timeout-ms", "300"]).await;
    let wallet = app.funded_wallet(10).await;
    set_reachable(&app, false).await;

    let response = app.deposit(wallet, 5).await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    let read = app.get(&format!("/api/v1/wallets/{wallet}")).await;
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);

    set_reachable(&app, true).await;
    // The same instance serves again without a restart.
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = app.withdraw(wallet, 10).await.status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK);
    // The deposit answered with 503 was not applied: the withdrawal emptied the wallet.
    assert_eq!(app.balance(wallet).await, 0);
    app.assert_ledger_consistent().await;
}
