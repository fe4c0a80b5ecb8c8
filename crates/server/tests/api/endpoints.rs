//! Black-box tests of HTTP API v1 (design.md): every endpoint, every error code, and the
//! problem+json shape of every error.
//!
//! What the HTTP layer refuses before any storage is involved (unknown routes and methods,
//! content types, sizes, malformed ids) is checked on the router in process: its database is
//! unreachable, so a refusal that came after a write was attempted would be a 503 instead.

use crate::helpers::router::{request, router};
use crate::helpers::{
    MAX_MONEY, TestApp, assert_problem, assert_problem_in, assert_timestamp, assert_uuid,
    field_names, spawn_app, status_and_body,
};
use axum::body::Body;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// `POST /api/v1/wallet` with a raw body sent as JSON.
async fn post_raw(app: &TestApp, body: impl Into<String>) -> Response {
    app.post_raw("/api/v1/wallet", body).await
}

// ---------------------------------------------------------------- POST /api/v1/wallet

#[tokio::test]
async fn deposit_returns_the_operation_record_with_the_new_balance() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let (status, body) = status_and_body(app.deposit(wallet, 25).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        field_names(&body),
        [
            "amount",
            "available",
            "balance",
            "createdAt",
            "operationId",
            "operationType",
            "status",
            "walletId"
        ]
    );
    assert_uuid(&body["operationId"]);
    assert_eq!(body["walletId"], wallet.to_string());
    assert_eq!(body["operationType"], "DEPOSIT");
    assert_eq!(body["amount"], 25);
    assert_eq!(body["status"], "APPLIED");
    assert_eq!(body["balance"], 125);
    assert_timestamp(&body["createdAt"]);
    assert_eq!(app.balance(wallet).await, 125);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn deposit_to_an_unknown_wallet_creates_it() {
    let app = spawn_app().await;
    let wallet = Uuid::new_v4();

    let (status, body) = status_and_body(app.deposit(wallet, 40).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["balance"], 40);
    assert_eq!(app.balance(wallet).await, 40);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn withdraw_within_the_balance_is_applied() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let (status, body) = status_and_body(app.withdraw(wallet, 30).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["operationType"], "WITHDRAW");
    assert_eq!(body["amount"], 30);
    assert_eq!(body["status"], "APPLIED");
    assert_eq!(body["balance"], 70);
    assert_eq!(app.balance(wallet).await, 70);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn withdraw_of_the_whole_balance_leaves_zero() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let (status, body) = status_and_body(app.withdraw(wallet, 100).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["balance"], 0);
    assert_eq!(app.balance(wallet).await, 0);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn withdraw_more_than_balance_is_rejected_with_409() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let response = app.withdraw(wallet, 101).await;

    assert_problem(response, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(app.balance(wallet).await, 100);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn rejected_withdrawal_is_recorded_in_history_as_rejected() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let response = app.withdraw(wallet, 101).await;
    assert_problem(response, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;

    let history = app.history(wallet).await;
    assert_eq!(history.len(), 2, "{history:?}");
    let rejected = &history[0];
    assert_eq!(rejected["status"], "REJECTED", "{rejected}");
    assert_eq!(rejected["operationType"], "WITHDRAW");
    assert_eq!(rejected["amount"], 101);
    assert_eq!(rejected["balance"], 100);
    assert_eq!(rejected["walletId"], wallet.to_string());
    assert_eq!(history[1]["status"], "APPLIED");
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn withdraw_from_unknown_wallet_is_404() {
    let app = spawn_app().await;
    let wallet = Uuid::new_v4();

    let response = app.withdraw(wallet, 1).await;

    assert_problem(response, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    let response = app.get(&format!("/api/v1/wallets/{wallet}")).await;
    assert_problem(response, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn deposit_past_the_balance_limit_is_rejected_with_409() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(MAX_MONEY).await;
    assert_eq!(app.balance(wallet).await, MAX_MONEY);

    let response = app.deposit(wallet, 1).await;

    assert_problem(response, StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED").await;
    assert_eq!(app.balance(wallet).await, MAX_MONEY);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn invalid_amounts_are_rejected_with_400_and_change_nothing() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let bad_amounts = [
        json!(0),
        json!(-1),
        json!(MAX_MONEY + 1),
        json!(1.5),
        json!(10.0),
        json!("10"),
        json!(true),
        json!(null),
    ];

    for kind in ["DEPOSIT", "WITHDRAW"] {
        for amount in &bad_amounts {
            let body = json!({"walletId": wallet, "operationType": kind, "amount": amount});
            let response = app.operation(&body).await;
            assert_problem_in(
                &format!("{kind} of {amount}"),
                response,
                StatusCode::BAD_REQUEST,
                "INVALID_AMOUNT",
            )
            .await;
        }
    }

    assert_eq!(app.balance(wallet).await, 100);
    assert_eq!(app.history(wallet).await.len(), 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn amounts_outside_every_integer_type_are_rejected_with_400() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    // Numbers past u64 and i64, and non-numbers, which `json!` cannot build.
    for amount in ["18446744073709551616", "-9223372036854775809", "[1]", "{}"] {
        let body = format!(
            r#"{{"walletId": "{wallet}", "operationType": "DEPOSIT", "amount": {amount}}}"#
        );
        let response = post_raw(&app, body).await;
        assert_problem_in(amount, response, StatusCode::BAD_REQUEST, "INVALID_AMOUNT").await;
    }
    assert_eq!(app.balance(wallet).await, 100);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn amount_beyond_the_range_of_a_double_is_rejected_as_an_invalid_amount() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    // Valid JSON (RFC 8259 puts no limit on a number's size), just not an amount.
    let body =
        format!(r#"{{"walletId": "{wallet}", "operationType": "DEPOSIT", "amount": 1e400}}"#);

    let response = post_raw(&app, body).await;

    assert_problem(response, StatusCode::BAD_REQUEST, "INVALID_AMOUNT").await;
    assert_eq!(app.balance(wallet).await, 100);
}

#[tokio::test]
async fn largest_amount_is_accepted() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;

    let (status, body) = status_and_body(app.deposit(wallet, MAX_MONEY).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["amount"], MAX_MONEY);
    assert_eq!(app.balance(wallet).await, MAX_MONEY);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn json_content_type_with_charset_is_accepted() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;
    let body = json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": 3});

    let response = app
        .client
        .post(app.url("/api/v1/wallet"))
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.balance(wallet).await, 3);
}

#[tokio::test]
async fn invalid_amount_for_an_unknown_wallet_does_not_create_it() {
    let app = spawn_app().await;
    let wallet = Uuid::new_v4();

    let response = app
        .operation(&json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": 0}))
        .await;

    assert_problem(response, StatusCode::BAD_REQUEST, "INVALID_AMOUNT").await;
    let response = app.get(&format!("/api/v1/wallets/{wallet}")).await;
    assert_problem(response, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
}

#[tokio::test]
async fn malformed_operation_requests_are_rejected_with_400_and_change_nothing() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let w = wallet.to_string();
    let cases: Vec<(&str, Value)> = vec![
        (
            "missing amount",
            json!({"walletId": w, "operationType": "DEPOSIT"}),
        ),
        (
            "missing walletId",
            json!({"operationType": "DEPOSIT", "amount": 1}),
        ),
        ("missing operationType", json!({"walletId": w, "amount": 1})),
        (
            "unknown field",
            json!({"walletId": w, "operationType": "DEPOSIT", "amount": 1, "note": "x"}),
        ),
        (
            "walletId is a number",
            json!({"walletId": 5, "operationType": "DEPOSIT", "amount": 1}),
        ),
        (
            "operationType is a number",
            json!({"walletId": w, "operationType": 1, "amount": 1}),
        ),
        (
            "operationId is a number",
            json!({"walletId": w, "operationType": "DEPOSIT", "amount": 1, "operationId": 7}),
        ),
        (
            "operationId is not a UUID",
            json!({"walletId": w, "operationType": "DEPOSIT", "amount": 1, "operationId": "x"}),
        ),
        (
            "walletId is not a UUID",
            json!({"walletId": "not-a-uuid", "operationType": "DEPOSIT", "amount": 1}),
        ),
        (
            "lowercase operationType",
            json!({"walletId": w, "operationType": "deposit", "amount": 1}),
        ),
        (
            "unknown operationType",
            json!({"walletId": w, "operationType": "TRANSFER", "amount": 1}),
        ),
        (
            "JSON array",
            json!([{"walletId": w, "operationType": "DEPOSIT", "amount": 1}]),
        ),
        ("JSON string", json!("DEPOSIT")),
        ("JSON null", json!(null)),
    ];

    for (case, body) in &cases {
        let response = app.operation(body).await;
        assert_problem_in(case, response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }

    assert_eq!(app.balance(wallet).await, 100);
    assert_eq!(app.history(wallet).await.len(), 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn malformed_json_bodies_are_rejected_with_400() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let cases = [
        ("truncated JSON", r#"{"walletId": "#.to_owned()),
        ("not JSON", "deposit 10".to_owned()),
        ("empty body", String::new()),
        ("whitespace body", "   ".to_owned()),
        (
            "duplicate key",
            format!(
                r#"{{"walletId": "{wallet}", "operationType": "DEPOSIT", "amount": 1, "amount": 2}}"#
            ),
        ),
        (
            "duplicate key with equal values",
            format!(
                r#"{{"walletId": "{wallet}", "walletId": "{wallet}", "operationType": "DEPOSIT", "amount": 1}}"#
            ),
        ),
        (
            "trailing garbage",
            format!(r#"{{"walletId": "{wallet}", "operationType": "DEPOSIT", "amount": 1}} x"#),
        ),
    ];

    for (case, body) in cases {
        let response = post_raw(&app, body).await;
        assert_problem_in(case, response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }

    assert_eq!(app.balance(wallet).await, 100);
    assert_eq!(app.history(wallet).await.len(), 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn text_plain_body_is_rejected_with_415() {
    let body = json!({"walletId": Uuid::new_v4(), "operationType": "DEPOSIT", "amount": 1});

    let response = router()
        .send(
            request(Method::POST, "/api/v1/wallet")
                .header(CONTENT_TYPE, "text/plain")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;

    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
}

#[tokio::test]
async fn body_without_content_type_is_rejected_with_415() {
    let body = json!({"walletId": Uuid::new_v4(), "operationType": "DEPOSIT", "amount": 1});

    let response = router()
        .send(
            request(Method::POST, "/api/v1/wallet")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;

    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
}

#[tokio::test]
async fn body_over_the_size_limit_is_rejected_with_413() {
    // A valid operation padded with whitespace to 1 MiB: only its size is wrong.
    let operation = json!({"walletId": Uuid::new_v4(), "operationType": "DEPOSIT", "amount": 1});
    let mut body = operation.to_string();
    body.push_str(&" ".repeat(1024 * 1024 - body.len()));

    let response = router().post_json("/api/v1/wallet", body).await;

    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn every_error_response_is_a_problem_document_with_all_fields() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let unknown = Uuid::new_v4();

    let cases = vec![
        (
            app.withdraw(wallet, 11).await,
            StatusCode::CONFLICT,
            "INSUFFICIENT_FUNDS",
        ),
        (
            app.withdraw(unknown, 1).await,
            StatusCode::NOT_FOUND,
            "WALLET_NOT_FOUND",
        ),
        (
            post_raw(&app, "{").await,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            app.deposit(wallet, 0).await,
            StatusCode::BAD_REQUEST,
            "INVALID_AMOUNT",
        ),
        (
            app.get(&format!("/api/v1/wallets/{wallet}/operations/{unknown}"))
                .await,
            StatusCode::NOT_FOUND,
            "OPERATION_NOT_FOUND",
        ),
        (
            app.create_wallet(Some(json!({"walletId": wallet}))).await,
            StatusCode::CONFLICT,
            "WALLET_ALREADY_EXISTS",
        ),
        (
            app.get("/no/such/route").await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            app.get("/api/v1/wallet").await,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
    ];

    for (response, status, code) in cases {
        assert_problem(response, status, code).await;
    }
}

// ---------------------------------------------------------------- GET /api/v1/wallets/{id}

#[tokio::test]
async fn get_wallet_returns_its_balance_and_timestamps() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(55).await;

    let (status, body) = status_and_body(app.get(&format!("/api/v1/wallets/{wallet}")).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        field_names(&body),
        [
            "available",
            "balance",
            "createdAt",
            "held",
            "updatedAt",
            "walletId"
        ]
    );
    assert_eq!(body["walletId"], wallet.to_string());
    assert_eq!(body["balance"], 55);
    assert_timestamp(&body["createdAt"]);
    assert_timestamp(&body["updatedAt"]);
}

#[tokio::test]
async fn get_unknown_wallet_is_404() {
    let app = spawn_app().await;

    let response = app
        .get(&format!("/api/v1/wallets/{}", Uuid::new_v4()))
        .await;

    assert_problem(response, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
}

#[tokio::test]
async fn get_wallet_with_a_bad_uuid_is_400() {
    let response = router().get("/api/v1/wallets/not-a-uuid").await;

    assert_problem(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
}

// ---------------------------------------------------------------- POST /api/v1/wallets

#[tokio::test]
async fn create_wallet_with_an_id_returns_201_with_zero_balance_and_location() {
    let app = spawn_app().await;
    let wallet = Uuid::new_v4();

    let response = app.create_wallet(Some(json!({"walletId": wallet}))).await;

    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["walletId"], wallet.to_string());
    assert_eq!(body["balance"], 0);
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/wallets/{wallet}").as_str())
    );
    assert_eq!(app.balance(wallet).await, 0);
}

#[tokio::test]
async fn create_wallet_without_a_body_generates_an_id() {
    let app = spawn_app().await;

    let response = app.create_wallet(None).await;

    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let wallet = assert_uuid(&body["walletId"]);
    assert_eq!(body["balance"], 0);
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/wallets/{wallet}").as_str())
    );
    assert_eq!(app.balance(wallet).await, 0);
}

#[tokio::test]
async fn create_wallet_twice_with_the_same_id_is_409() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(30).await;

    let response = app.create_wallet(Some(json!({"walletId": wallet}))).await;

    assert_problem(response, StatusCode::CONFLICT, "WALLET_ALREADY_EXISTS").await;
    assert_eq!(app.balance(wallet).await, 30);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn create_wallet_with_a_bad_body_is_400() {
    let app = spawn_app().await;
    let cases = [
        json!({"walletId": "not-a-uuid"}),
        json!({"walletId": 42}),
        json!({"walletId": Uuid::new_v4(), "balance": 100}),
        json!([]),
    ];

    for body in cases {
        let response = app.create_wallet(Some(body.clone())).await;
        assert_problem_in(
            &body.to_string(),
            response,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        )
        .await;
    }
    let wallets: i64 = sqlx::query_scalar("SELECT count(*) FROM wallets")
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(wallets, 0);
}

// ------------------------------------------------ GET /api/v1/wallets/{id}/operations

#[tokio::test]
async fn history_pages_newest_first_without_duplicates_or_gaps() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;
    let mut posted = Vec::new();
    for amount in 1..=7 {
        let (status, body) = status_and_body(app.deposit(wallet, amount).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        posted.push(body["operationId"].as_str().unwrap().to_owned());
    }
    posted.reverse();

    let mut pages = Vec::new();
    let mut path = format!("/api/v1/wallets/{wallet}/operations?limit=3");
    loop {
        let (status, page) = status_and_body(app.get(&path).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages.push(page["items"].as_array().unwrap().clone());
        match &page["nextCursor"] {
            Value::Null => break,
            Value::String(cursor) => {
                path = format!("/api/v1/wallets/{wallet}/operations?limit=3&cursor={cursor}");
            }
            other => panic!("nextCursor is a string or null, got {other}"),
        }
        assert!(pages.len() < 10, "pagination does not end");
    }

    let sizes: Vec<_> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let items: Vec<_> = pages.concat();
    let ids: Vec<_> = items
        .iter()
        .map(|item| item["operationId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, posted, "newest first, each operation exactly once");
    let amounts: Vec<_> = items
        .iter()
        .map(|item| item["amount"].as_u64().unwrap())
        .collect();
    assert_eq!(amounts, [7, 6, 5, 4, 3, 2, 1]);
    let balances: Vec<_> = items
        .iter()
        .map(|item| item["balance"].as_u64().unwrap())
        .collect();
    assert_eq!(balances, [28, 21, 15, 10, 6, 3, 1]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn history_page_that_ends_exactly_at_the_limit_has_no_next_cursor() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;
    for amount in 1..=3 {
        assert_eq!(app.deposit(wallet, amount).await.status(), StatusCode::OK);
    }

    let (status, page) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations?limit=3"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!(page["nextCursor"], Value::Null);
}

#[tokio::test]
async fn history_without_limit_returns_everything_on_one_page() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;
    for amount in 1..=3 {
        assert_eq!(app.deposit(wallet, amount).await.status(), StatusCode::OK);
    }

    let (status, page) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!(page["nextCursor"], Value::Null);
}

#[tokio::test]
async fn history_of_a_wallet_without_operations_is_empty() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;

    let (status, page) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page, json!({"items": [], "nextCursor": null}));
}

#[tokio::test]
async fn history_with_bad_query_parameters_is_400() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let cases = [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=abc",
        "cursor=garbage",
        "cursor=-5",
        "cursor=0",
        "cursor=99999999999999999999",
        "limit=3&limit=4",
        "colour=blue",
    ];

    for query in cases {
        let response = app
            .get(&format!("/api/v1/wallets/{wallet}/operations?{query}"))
            .await;
        assert_problem_in(query, response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn history_accepts_the_largest_limit() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;

    let (status, page) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations?limit=500"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn history_of_unknown_wallet_is_404() {
    let app = spawn_app().await;

    let response = app
        .get(&format!("/api/v1/wallets/{}/operations", Uuid::new_v4()))
        .await;

    assert_problem(response, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
}

#[tokio::test]
async fn history_with_a_bad_wallet_uuid_is_400() {
    let response = router().get("/api/v1/wallets/not-a-uuid/operations").await;

    assert_problem(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
}

// --------------------------------------- GET /api/v1/wallets/{id}/operations/{operationId}

#[tokio::test]
async fn get_operation_returns_its_record() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let (status, posted) = status_and_body(app.withdraw(wallet, 40).await).await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let operation = assert_uuid(&posted["operationId"]);

    let (status, body) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations/{operation}"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(field_names(&body), field_names(&posted));
    for field in [
        "operationId",
        "walletId",
        "operationType",
        "amount",
        "status",
        "balance",
    ] {
        assert_eq!(body[field], posted[field], "{field}");
    }
    assert_timestamp(&body["createdAt"]);
}

#[tokio::test]
async fn get_operation_reports_the_same_created_at_as_the_post() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;
    let (status, posted) = status_and_body(app.deposit(wallet, 5).await).await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let operation = assert_uuid(&posted["operationId"]);

    let (status, body) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations/{operation}"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, posted, "one operation, one record");
}

#[tokio::test]
async fn get_operation_of_a_rejected_withdrawal_reports_rejected() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let operation = Uuid::new_v4();
    let response = app
        .operation(&json!({
            "walletId": wallet, "operationType": "WITHDRAW", "amount": 11, "operationId": operation
        }))
        .await;
    assert_problem(response, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;

    let (status, body) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations/{operation}"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["operationId"], operation.to_string());
    assert_eq!(body["status"], "REJECTED");
    assert_eq!(body["amount"], 11);
    assert_eq!(body["balance"], 10);
}

#[tokio::test]
async fn get_unknown_operation_is_404() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;

    let response = app
        .get(&format!(
            "/api/v1/wallets/{wallet}/operations/{}",
            Uuid::new_v4()
        ))
        .await;

    assert_problem(response, StatusCode::NOT_FOUND, "OPERATION_NOT_FOUND").await;
}

#[tokio::test]
async fn get_operation_of_another_wallet_is_404() {
    let app = spawn_app().await;
    let owner = app.funded_wallet(0).await;
    let other = app.funded_wallet(0).await;
    let (status, posted) = status_and_body(app.deposit(owner, 5).await).await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let operation = assert_uuid(&posted["operationId"]);

    let response = app
        .get(&format!("/api/v1/wallets/{other}/operations/{operation}"))
        .await;

    assert_problem(response, StatusCode::NOT_FOUND, "OPERATION_NOT_FOUND").await;
}

#[tokio::test]
async fn get_operation_with_bad_uuids_is_400() {
    let router = router();
    let (wallet, operation) = (Uuid::new_v4(), Uuid::new_v4());

    for path in [
        format!("/api/v1/wallets/{wallet}/operations/not-a-uuid"),
        format!("/api/v1/wallets/not-a-uuid/operations/{operation}"),
    ] {
        let response = router.get(&path).await;
        assert_problem_in(&path, response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
}

// ---------------------------------------------------------------- routing

#[tokio::test]
async fn unknown_route_is_404_not_found() {
    let router = router();

    for path in [
        "/",
        "/api/v2/wallet",
        "/api/v1/wallet/x",
        "/api/v1/wallets/a/b/c/d",
    ] {
        let response = router.get(path).await;
        assert_problem_in(path, response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn wrong_method_is_405_method_not_allowed() {
    let router = router();
    let wallet = Uuid::new_v4();

    let wallet_path = format!("/api/v1/wallets/{wallet}");
    let history_path = format!("/api/v1/wallets/{wallet}/operations");
    let requests = [
        (Method::DELETE, wallet_path.as_str()),
        (Method::GET, "/api/v1/wallet"),
        (Method::PUT, "/api/v1/wallet"),
        (Method::POST, history_path.as_str()),
    ];

    for (method, path) in requests {
        let case = format!("{method} {path}");
        let response = router.call(method, path).await;
        assert_problem_in(
            &case,
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        )
        .await;
    }
}
