//! Hostile input: malformed bodies, headers, paths and query strings. Whatever arrives, the
//! answer is a 4xx, no balance changes and the process keeps serving.
//!
//! What can be said as an HTTP request goes to the router in process, whose database is
//! unreachable: an input that got as far as storage would be answered 503, so a 4xx also
//! shows that nothing was read or written. Broken HTTP itself (framing, oversized headers,
//! bodies that stop) needs a socket and a real server.

use crate::helpers::raw::exchange;
use crate::helpers::router::{TestRouter, request, router};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use reqwest::StatusCode;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uuid::Uuid;

/// Sends raw bytes as one HTTP/1.1 exchange and returns the response's status code.
async fn raw_status(app: &TestApp, request: &[u8]) -> u16 {
    exchange(app.addr, request).await.status.as_u16()
}

/// Asserts that every request in `corpus` gets a 4xx from the router in process.
async fn assert_all_refused_in_process(router: &TestRouter, corpus: Vec<(&str, Request<Body>)>) {
    for (name, request) in corpus {
        let status = router.send(request).await.status;
        assert!(status.is_client_error(), "{name}: got {status}");
    }
}

/// A POST of `body` to the operation endpoint, as JSON.
fn post_operation(body: impl AsRef<[u8]>) -> Request<Body> {
    request(Method::POST, "/api/v1/wallet")
        .header("content-type", "application/json")
        .body(Body::from(body.as_ref().to_vec()))
        .unwrap()
}

fn get(target: &str) -> Request<Body> {
    request(Method::GET, target).body(Body::empty()).unwrap()
}

/// Asserts that every raw request in `corpus` gets a 4xx, and that the wallet is untouched.
async fn assert_all_refused(app: &TestApp, wallet: Uuid, corpus: Vec<(&str, Vec<u8>)>) {
    for (name, request) in corpus {
        let status = raw_status(app, &request).await;
        assert!((400..500).contains(&status), "{name}: got {status}");
    }
    assert_eq!(app.balance(wallet).await, 100, "no balance changed");
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_4xx() {
    let wallet = Uuid::new_v4();
    let op = |amount: &str| {
        format!(r#"{{"walletId":"{wallet}","operationType":"WITHDRAW","amount":{amount}}}"#)
    };
    let nested = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!("1{}", "0".repeat(10_000));
    let mut invalid_utf8 = op("1").into_bytes();
    invalid_utf8.insert(10, 0xff);
    let corpus: Vec<(&str, Request<Body>)> = vec![
        (
            "deeply nested amount",
            post_operation(op(&nested).as_bytes()),
        ),
        ("deeply nested body", post_operation(nested.as_bytes())),
        ("huge number", post_operation(op(&huge).as_bytes())),
        (
            "exponent past a double",
            post_operation(op("1e999999").as_bytes()),
        ),
        ("negative zero", post_operation(op("-0").as_bytes())),
        (
            "escaped NUL in a UUID",
            post_operation(br#"{"walletId":"\u0000","operationType":"WITHDRAW","amount":1}"#),
        ),
        ("raw NUL byte", post_operation(op("1\0").as_bytes())),
        ("invalid UTF-8", post_operation(invalid_utf8)),
        (
            "duplicate amount",
            post_operation(
                format!(
                    r#"{{"walletId":"{wallet}","operationType":"WITHDRAW","amount":1,"amount":2}}"#
                )
                .as_bytes(),
            ),
        ),
        (
            "lone surrogate",
            post_operation(br#"{"walletId":"\ud800","operationType":"WITHDRAW","amount":1}"#),
        ),
        (
            "BOM before the body",
            post_operation(format!("\u{feff}{}", op("1")).as_bytes()),
        ),
        (
            "string of 10 000 quotes",
            post_operation(format!("\"{}\"", "\\\"".repeat(10_000)).as_bytes()),
        ),
    ];
    assert_all_refused_in_process(&router(), corpus).await;
}

#[tokio::test]
async fn malformed_paths_queries_and_headers_are_refused_with_4xx() {
    let wallet = Uuid::new_v4();
    let history = format!("/api/v1/wallets/{wallet}/operations");
    let long_path = format!("/api/v1/wallets/{}", "a".repeat(50_000));
    let bad_key = request(Method::POST, "/api/v1/wallet")
        .header("content-type", "application/json")
        .header(
            "idempotency-key",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        )
        .body(Body::from("{}"))
        .unwrap();
    let brew = request(Method::from_bytes(b"BREW").unwrap(), "/api/v1/wallet")
        .body(Body::empty())
        .unwrap();
    let corpus: Vec<(&str, Request<Body>)> = vec![
        ("percent-encoded NUL", get("/api/v1/wallets/%00")),
        ("invalid UTF-8 in the path", get("/api/v1/wallets/%ff%fe")),
        ("path traversal", get("/api/v1/wallets/../../../etc/passwd")),
        ("very long path", get(&long_path)),
        (
            "limit past u32",
            get(&format!("{history}?limit=99999999999999999999")),
        ),
        ("negative limit", get(&format!("{history}?limit=-1"))),
        ("NUL cursor", get(&format!("{history}?cursor=%00"))),
        ("repeated limit", get(&format!("{history}?limit=1&limit=2"))),
        (
            "invalid UTF-8 in the query",
            get(&format!("{history}?cursor=%ff")),
        ),
        ("unknown method", brew),
        ("non-ASCII idempotency key", bad_key),
    ];
    assert_all_refused_in_process(&router(), corpus).await;
}

#[tokio::test]
async fn malformed_http_is_refused_with_4xx() {
    // A short deadline: the truncated body is answered 408 when it runs out.
    let app = spawn_app_with(&["--request-timeout-ms", "500"]).await;
    let wallet = app.funded_wallet(100).await;
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("huge header", format!("GET /api/v1/wallets/{wallet} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(1_000_000)).into_bytes()),
        ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n".to_vec()),
        ("body shorter than its length", b"POST /api/v1/wallet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}".to_vec()),
        ("broken chunked body", b"POST /api/v1/wallet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec()),
    ];
    assert_all_refused(&app, wallet, corpus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_senders_do_not_stop_other_clients() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    // Slowloris: many connections that send their headers one byte at a time.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        slow.push(tokio::spawn(async move {
            for byte in b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: "
                .iter()
                .cycle()
                .take(40)
            {
                if stream.write_all(&[*byte]).await.is_err() {
                    return; // the server gave up on us: fine
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    for _ in 0..20 {
        assert_eq!(app.deposit(wallet, 1).await.status(), StatusCode::OK);
    }
    for task in slow {
        task.await.unwrap();
    }
    assert_eq!(app.balance(wallet).await, 120);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_wallet_body_that_is_not_an_object_or_null_is_400() {
    let app = spawn_app().await;
    let create = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/wallets"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for body in ["[null]", "[]", "7", "\"id\""] {
        assert_eq!(
            create(body).await.unwrap().status(),
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    // `null` means no body, as the description says: a wallet with a new id.
    assert_eq!(create("null").await.unwrap().status(), StatusCode::CREATED);
}
