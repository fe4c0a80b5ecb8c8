//! The writers' database connections are killed under load: nothing acknowledged is lost,
//! nothing is applied twice, and the service recovers by itself.

mod common;

use common::{TestApp, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Sends one operation until it gets a definitive answer, retrying with the same
/// `operationId` after a 503 or a transport error, as a careful client does.
async fn settle(app: &TestApp, body: &Value) -> StatusCode {
    for _ in 0..100 {
        let sent = app
            .client
            .post(app.url("/api/v1/wallet"))
            .json(body)
            .send()
            .await;
        match sent.map(|r| r.status()) {
            Ok(StatusCode::SERVICE_UNAVAILABLE) | Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(status) => return status,
        }
    }
    panic!("no definitive answer after 100 attempts");
}

/// One client: operations until `stop`, returning each acknowledged id with its signed amount.
async fn client(
    app: Arc<TestApp>,
    wallet: Uuid,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<(Uuid, i64)> {
    let mut acknowledged = Vec::new();
    let mut i = seed;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let deposit = !i.is_multiple_of(3);
        let amount = (i % 17 + 1) as i64;
        let id = Uuid::new_v4();
        let body = common::operation_body(wallet, deposit, amount as u64, id);
        match settle(&app, &body).await {
            StatusCode::OK => acknowledged.push((id, if deposit { amount } else { -amount })),
            StatusCode::CONFLICT => {}
            other => panic!("unexpected status {other}"),
        }
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_writer_connections_loses_nothing_and_applies_nothing_twice() {
    let app = Arc::new(spawn_app().await);
    let initial = 10_000;
    let wallet = app.funded_wallet(initial).await;
    let db = app.db().await;
    let stop = Arc::new(AtomicBool::new(false));

    let clients: JoinSet<_> = (0..16)
        .map(|c| client(app.clone(), wallet, c * 1000, stop.clone()))
        .collect();

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
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<(Uuid, i64)> = clients.join_all().await.into_iter().flatten().collect();
    assert!(killed >= 10, "the test killed {killed} writer connections");
    assert!(
        acknowledged.len() > 100,
        "only {} operations went through",
        acknowledged.len()
    );

    // The service recovered without a restart.
    assert_eq!(app.deposit(wallet, 1).await.status(), StatusCode::OK);
    let expected = initial as i64 + acknowledged.iter().map(|(_, a)| a).sum::<i64>() + 1;
    assert_eq!(app.balance(wallet).await as i64, expected);

    let mut seen: HashMap<String, usize> = HashMap::new();
    for op in app.history(wallet).await {
        *seen
            .entry(op["operationId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (id, _) in &acknowledged {
        assert_eq!(
            seen.get(&id.to_string()),
            Some(&1),
            "operation {id} recorded once"
        );
    }
    app.assert_ledger_consistent().await;
}

/// Allows or refuses new connections to the test's database and drops the current ones,
/// from outside it: the database is "down" for the service while it refuses.
async fn set_reachable(app: &TestApp, reachable: bool) {
    let name = app.database_url.rsplit('/').next().unwrap();
    let mut admin = PgConnection::connect(&format!("{}/postgres", common::server_url()))
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
    let app = common::spawn_app_with(&["--request-timeout-ms", "300"]).await;
    let wallet = app.funded_wallet(10).await;
    set_reachable(&app, false).await;

    let response = app.deposit(wallet, 5).await;
    assert_eq!(response.headers()["retry-after"], "1");
    common::assert_problem(
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
