//! Every limit, with the clear error it produces when it is reached.

use crate::helpers::raw::read_reply;
use crate::helpers::{TestApp, assert_problem, spawn_app_with, status_and_body};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Reads until the server closes the connection (or 10 s pass, which fails the test).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received));
    let _ = read.await.expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413() {
    let app = spawn_app_with(&["--max-body-bytes", "256"]).await;
    let wallet = Uuid::new_v4();
    let padded = json!({
        "walletId": wallet, "operationType": "DEPOSIT", "amount": 1, "operationId": Uuid::new_v4(),
        "padding": "x".repeat(300),
    });
    let (status, body) = status_and_body(app.operation(&padded).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(
        app.deposit(wallet, 1).await.status(),
        StatusCode::OK,
        "small bodies pass"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_after_the_request_deadline() {
    let app = spawn_app_with(&["--request-timeout-ms", "200"]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/wallet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"walletId\":",
        )
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await;
    assert_problem(reply, StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT").await;
}

#[tokio::test]
async fn headers_that_stop_arriving_get_the_connection_closed() {
    let app = spawn_app_with(&["--header-read-timeout-ms", "200"]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let response = read_until_closed(&mut stream).await;
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408"),
        "{response}"
    );
    // The listener itself is fine.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

/// Opens a keep-alive connection that has been served once, so it holds a slot.
async fn held_connection(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_reply(&mut stream).await.status, StatusCode::OK);
    stream
}

#[tokio::test]
async fn a_connection_past_the_limit_gets_503_and_is_closed() {
    let app = spawn_app_with(&["--max-connections", "2"]).await;
    let first = held_connection(&app).await;
    let _second = held_connection(&app).await;

    let mut third = TcpStream::connect(app.addr).await.unwrap();
    let reply = read_reply(&mut third).await;
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_problem(
        reply,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;

    // A slot frees when a connection closes.
    drop(first);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        if let Ok(response) = fresh.get(app.url("/health/live")).send().await {
            status = response.status();
            if status == StatusCode::OK {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_history_page_over_the_configured_size_is_400() {
    let app = spawn_app_with(&["--max-page-size", "10"]).await;
    let wallet = app.funded_wallet(5).await;
    let history = format!("/api/v1/wallets/{wallet}/operations");
    let (status, body) = status_and_body(app.get(&format!("{history}?limit=11")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "INVALID_REQUEST");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("between 1 and 10")
    );
    assert_eq!(
        app.get(&format!("{history}?limit=10")).await.status(),
        StatusCode::OK
    );
    // Without `limit`, the page is the default or the configured maximum if smaller.
    let small = spawn_app_with(&["--max-page-size", "1"]).await;
    let wallet = small.funded_wallet(5).await;
    small.deposit(wallet, 1).await;
    let (_, page) = status_and_body(
        small
            .get(&format!("/api/v1/wallets/{wallet}/operations"))
            .await,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

/// Holds an exclusive lock on `table` in the app's database until the connection drops.
async fn lock_table(app: &TestApp, table: &str) -> PgConnection {
    let mut locker = PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut locker)
        .await
        .unwrap();
    locker
}

#[tokio::test]
async fn a_statement_stuck_behind_a_lock_is_cancelled_and_answered_503() {
    let app = spawn_app_with(&["--db-statement-timeout-ms", "200"]).await;
    let wallet = app.funded_wallet(5).await;
    let locker = lock_table(&app, "wallets").await;

    let response = app.get(&format!("/api/v1/wallets/{wallet}")).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");

    locker.close().await.unwrap();
    assert_eq!(app.balance(wallet).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_cannot_get_a_pool_connection_is_answered_503() {
    let app = spawn_app_with(&[
        "--db-pool-size",
        "1",
        "--db-acquire-timeout-ms",
        "200",
        "--db-statement-timeout-ms",
        "5000",
    ])
    .await;
    let wallet = app.funded_wallet(5).await;
    let operation = app.history(wallet).await[0]["operationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let locker = lock_table(&app, "wallets").await;

    // This read takes the pool's only connection and waits on the lock.
    let client = app.client.clone();
    let stuck = tokio::spawn(
        client
            .get(app.url(&format!("/api/v1/wallets/{wallet}")))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let path = format!("/api/v1/wallets/{wallet}/operations/{operation}");
    let (status, body) = status_and_body(app.get(&path).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");

    locker.close().await.unwrap();
    assert_eq!(stuck.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
}
