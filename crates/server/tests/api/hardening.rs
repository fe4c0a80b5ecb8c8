//! How the service answers what a careless or hostile client sends at the HTTP level: every
//! refusal a problem+json, nothing applied, and one spelling for every id.

use crate::helpers::pg_cluster::PgCluster;
use crate::helpers::raw::{exchange, read_reply};
use crate::helpers::router::{request, router_with};
use crate::helpers::{ServerProcess, assert_problem, assert_problem_in, spawn_app, spawn_app_with};
use axum::body::Body;
use axum::http::{Method, header};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uuid::Uuid;

/// A deposit of 5 to `wallet` as raw HTTP/1.1, with `headers` (each ending in CRLF) in place
/// of the usual `Host`.
fn raw_deposit(wallet: Uuid, headers: &str) -> Vec<u8> {
    let body = format!(r#"{{"walletId":"{wallet}","operationType":"DEPOSIT","amount":5}}"#);
    format!(
        "POST /api/v1/wallet HTTP/1.1\r\n{headers}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn an_http_1_1_request_without_exactly_one_host_is_400_and_applies_nothing() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    for headers in ["", "Host: a\r\nHost: b\r\n", "Host: a\r\nhost: a\r\n"] {
        let reply = exchange(app.addr, &raw_deposit(wallet, headers)).await;
        assert_problem_in(headers, reply, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
    assert_eq!(app.balance(wallet).await, 100);
    // The same request with its Host is applied.
    let reply = exchange(app.addr, &raw_deposit(wallet, "Host: a\r\n")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(app.balance(wallet).await, 105);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn an_http_1_0_request_needs_no_host() {
    let app = spawn_app().await;
    let reply = exchange(app.addr, b"GET /health/live HTTP/1.0\r\n\r\n").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_may_be_followed_by_several_spaces() {
    let router = router_with(&["--api-tokens", "s3cret"]);
    // Authenticated, a request reaches routing: this path does not exist.
    for value in [
        "Bearer s3cret",
        "bearer s3cret",
        "BEARER s3cret",
        "Bearer   s3cret",
    ] {
        let reply = router
            .send(
                request(Method::GET, "/api/v1/nowhere")
                    .header(header::AUTHORIZATION, value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_problem_in(value, reply, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    for value in ["Bearer wrong", "Bearers3cret", "Basic s3cret", "Bearer"] {
        let reply = router
            .send(
                request(Method::GET, "/api/v1/nowhere")
                    .header(header::AUTHORIZATION, value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_problem_in(value, reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
}

#[tokio::test]
async fn a_header_that_may_appear_once_sent_twice_is_400() {
    let router = router_with(&["--api-tokens", "s3cret"]);
    let body = json!({"walletId": Uuid::new_v4(), "operationType": "DEPOSIT", "amount": 1});
    let twice = |name: header::HeaderName, first: &str, second: &str| {
        request(Method::POST, "/api/v1/wallet")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .header(header::CONTENT_TYPE, "application/json")
            .header(name.clone(), first)
            .header(name, second)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    for request in [
        twice(header::AUTHORIZATION, "Bearer s3cret", "Bearer other"),
        twice(header::CONTENT_TYPE, "application/json", "text/plain"),
        twice(
            header::HeaderName::from_static("idempotency-key"),
            "k1",
            "k2",
        ),
    ] {
        let reply = router.send(request).await;
        assert_problem(reply, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn requests_hyper_refuses_get_problem_bodies_too() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "two different Content-Lengths",
            b"POST /api/v1/wallet HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                .to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "a control byte in a header",
            b"GET /health/live HTTP/1.1\r\nHost: a\r\nX-Note: a\x01b\r\n\r\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "a malformed request line",
            b"GET /health/live HTTP/9.9\r\nHost: a\r\n\r\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "a request target too long",
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
        ),
        (
            "too many headers",
            format!(
                "GET /health/live HTTP/1.1\r\nHost: a\r\n{}\r\n",
                "X-A: b\r\n".repeat(120)
            )
            .into_bytes(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
        ),
    ];
    for (name, request, status, code) in cases {
        let reply = exchange(app.addr, &request).await;
        let length = reply.header(header::CONTENT_LENGTH).map(str::to_owned);
        assert_eq!(length, Some(reply.body.len().to_string()), "{name}");
        assert_problem_in(name, reply, status, code).await;
    }
    assert_eq!(app.balance(wallet).await, 100);
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_413_before_it_is_sent() {
    let app = spawn_app_with(&["--max-body-bytes", "1024"]).await;
    let head = |expect: &str| {
        format!(
            "POST /api/v1/wallet HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
             Content-Length: 1000000\r\n{expect}\r\n"
        )
    };
    for expect in ["", "Expect: 100-continue\r\n"] {
        // Only the head is sent: the answer cannot be waiting for the body.
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(head(expect).as_bytes()).await.unwrap();
        // The first answer is the 413, not `100 Continue`: the client must not start sending.
        let reply = read_reply(&mut stream).await;
        assert_problem_in(
            expect,
            reply,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        )
        .await;
    }
}

#[tokio::test]
async fn ids_are_taken_only_in_their_hyphenated_spelling() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let spellings = [
        format!("{{{wallet}}}"),
        format!("urn:uuid:{wallet}"),
        wallet.simple().to_string(),
    ];
    for spelling in &spellings {
        let response = app.get(&format!("/api/v1/wallets/{spelling}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{spelling}");
        let body = json!({"walletId": spelling, "operationType": "DEPOSIT", "amount": 5});
        let response = app.operation(&body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{spelling}");
        let id_body = json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": 5,
            "operationId": spelling});
        let response = app.operation(&id_body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{spelling}");
    }
    assert_eq!(app.balance(wallet).await, 100);
    // Upper-case hex is the same UUID, spelled the standard way.
    let upper = wallet.hyphenated().to_string().to_uppercase();
    let response = app.get(&format!("/api/v1/wallets/{upper}")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The listener's backlog as the kernel reports it (`ss`: Send-Q of a listening socket).
fn listen_backlog(port: u16) -> u32 {
    let output = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let columns: Vec<&str> = text.split_whitespace().collect();
    columns[2].parse().unwrap_or_else(|_| panic!("{text}"))
}

#[tokio::test]
async fn the_listen_backlog_is_the_configured_one() {
    let app = spawn_app().await;
    assert_eq!(listen_backlog(app.addr.port()), 1024);
    let app = spawn_app_with(&["--listen-backlog", "777"]).await;
    assert_eq!(listen_backlog(app.addr.port()), 777);
}

#[tokio::test]
async fn a_batch_that_breaks_a_database_rule_fails_at_once_with_500_not_503() {
    // A deadline far away: a writer that retried would answer 503 only after it.
    let app = spawn_app_with(&["--request-timeout", "60s"]).await;
    let wallet = app.funded_wallet(100).await;
    let db = app.db().await;
    sqlx::query("ALTER TABLE operations ADD CONSTRAINT test_small CHECK (amount < 1000)")
        .execute(&db)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = app.deposit(wallet, 5000).await;
    assert_problem(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "not retried to the deadline"
    );
    sqlx::query("ALTER TABLE operations DROP CONSTRAINT test_small")
        .execute(&db)
        .await
        .unwrap();
    // Nothing of the failed batch was stored, and the writer goes on.
    assert_eq!(app.balance(wallet).await, 100);
    assert_eq!(app.deposit(wallet, 5000).await.status(), StatusCode::OK);
    assert_eq!(app.balance(wallet).await, 5100);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_read_that_breaks_on_the_schema_is_500_not_503() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let db = app.db().await;
    sqlx::query("ALTER TABLE operations RENAME COLUMN balance_after TO balance_later")
        .execute(&db)
        .await
        .unwrap();
    let response = app
        .get(&format!("/api/v1/wallets/{wallet}/operations"))
        .await;
    assert_problem(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
    )
    .await;
}

#[tokio::test]
async fn start_up_waits_for_a_database_that_comes_up_later() {
    let cluster = PgCluster::start();
    cluster.stop_immediate();
    let mut server = ServerProcess::spawn(
        &cluster.url("wallet_late"),
        &["--db-startup-timeout", "60s"],
    );
    // The service is retrying now; the database arrives a moment later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(server.is_running(), "it waits instead of exiting");
    cluster.start_server();
    server.listening().await;
    let app = server.app();
    let wallet = app.funded_wallet(7).await;
    assert_eq!(app.balance(wallet).await, 7);
    assert!(
        server
            .output()
            .iter()
            .any(|line| line.contains("database not reachable yet"))
    );
}
