//! Black-box tests of idempotent operations (design.md, "Idempotency"): a repeat with the same
//! key and payload replays the original answer byte for byte, a different payload is refused,
//! and concurrent duplicates are applied once.

use crate::helpers::{
    IDEMPOTENCY_KEY, Reply, TestApp, assert_problem, operation_body, spawn_app, status_and_body,
};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use uuid::Uuid;

/// `POST /api/v1/wallet` with an `Idempotency-Key` header.
async fn with_key(app: &TestApp, key: impl Into<HeaderValue>, body: &Value) -> Reply {
    app.post_with_key("/api/v1/wallet", key, body).await
}

fn operation(wallet: Uuid, kind: &str, amount: u64) -> Value {
    operation_body(wallet, kind, amount, None)
}

fn with_id(wallet: Uuid, kind: &str, amount: u64, id: Uuid) -> Value {
    operation_body(wallet, kind, amount, Some(id))
}

// ---------------------------------------------------------------- replays

#[tokio::test]
async fn repeated_operation_id_replays_the_same_answer_and_applies_once() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let body = with_id(wallet, "DEPOSIT", 25, Uuid::new_v4());

    let first = Reply::of(app.operation(&body).await).await;
    let second = Reply::of(app.operation(&body).await).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.replayed(), None, "the first answer is not a replay");
    assert_eq!(second.status, first.status);
    assert_eq!(second.replayed(), Some("true"));
    assert_eq!(second.text(), first.text(), "byte-identical body");
    assert_eq!(app.balance(wallet).await, 125);
    assert_eq!(app.history(wallet).await.len(), 2);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn repeated_idempotency_key_replays_the_same_answer_and_applies_once() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let body = operation(wallet, "WITHDRAW", 30);

    let first = with_key(&app, HeaderValue::from_static("order-1"), &body).await;
    let second = with_key(&app, HeaderValue::from_static("order-1"), &body).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.replayed(), None, "the first answer is not a replay");
    assert_eq!(first.json()["balance"], 70);
    assert_eq!(second.status, first.status);
    assert_eq!(second.replayed(), Some("true"));
    assert_eq!(second.text(), first.text(), "byte-identical body");
    assert_eq!(app.balance(wallet).await, 70);
    assert_eq!(app.history(wallet).await.len(), 2);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn replay_answers_from_the_stored_result_not_the_current_balance() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let body = operation(wallet, "DEPOSIT", 10);
    let first = with_key(&app, HeaderValue::from_static("k"), &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(app.deposit(wallet, 5).await.status(), StatusCode::OK);

    let replay = with_key(&app, HeaderValue::from_static("k"), &body).await;

    assert_eq!(replay.replayed(), Some("true"));
    assert_eq!(
        replay.json()["balance"],
        110,
        "the balance right after the operation"
    );
    assert_eq!(app.balance(wallet).await, 115);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn stored_rejection_is_replayed_even_after_funds_arrive() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let body = operation(wallet, "WITHDRAW", 50);

    let first = with_key(&app, HeaderValue::from_static("pay-50"), &body).await;
    assert_problem(&first, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(first.replayed(), None);
    assert_eq!(app.deposit(wallet, 100).await.status(), StatusCode::OK);

    let retry = with_key(&app, HeaderValue::from_static("pay-50"), &body).await;

    assert_problem(&retry, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.text(), first.text(), "byte-identical body");
    assert_eq!(app.balance(wallet).await, 110);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn stored_rejection_is_replayed_for_a_repeated_operation_id() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let body = with_id(wallet, "WITHDRAW", 50, Uuid::new_v4());

    let first = Reply::of(app.operation(&body).await).await;
    assert_problem(&first, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(app.deposit(wallet, 100).await.status(), StatusCode::OK);

    let retry = Reply::of(app.operation(&body).await).await;

    assert_problem(&retry, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.text(), first.text(), "byte-identical body");
    assert_eq!(app.balance(wallet).await, 110);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn operation_submitted_with_a_key_can_be_read_by_its_operation_id() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;
    let posted = with_key(
        &app,
        HeaderValue::from_static("deposit-7"),
        &operation(wallet, "DEPOSIT", 7),
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text());
    let posted = posted.json();
    let id = posted["operationId"].as_str().unwrap();

    let (status, body) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations/{id}"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["operationId"], id);
    assert_eq!(body["status"], "APPLIED");
    assert_eq!(body["amount"], 7);
    assert_eq!(body["balance"], 7);
}

#[tokio::test]
async fn different_keys_are_different_operations() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;
    let body = operation(wallet, "DEPOSIT", 5);

    let a = with_key(&app, HeaderValue::from_static("a"), &body).await;
    let b = with_key(&app, HeaderValue::from_static("b"), &body).await;

    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(b.replayed(), None);
    assert_ne!(a.json()["operationId"], b.json()["operationId"]);
    assert_eq!(app.balance(wallet).await, 10);
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- reuse with another payload

/// A deposit of 10 under `key`, then `reuse` under the same key: 422, and only the first
/// deposit is in the wallet.
async fn reusing_the_key_is_refused(key: &'static str, reuse: impl Fn(Uuid) -> Value) {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let key = HeaderValue::from_static(key);
    let first = with_key(&app, key.clone(), &operation(wallet, "DEPOSIT", 10)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let reuse = with_key(&app, key, &reuse(wallet)).await;

    assert_problem(
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(app.balance(wallet).await, 110);
    assert_eq!(app.history(wallet).await.len(), 2);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn idempotency_key_reused_with_a_different_amount_is_422() {
    reusing_the_key_is_refused("key-amount", |wallet| operation(wallet, "DEPOSIT", 11)).await;
}

#[tokio::test]
async fn idempotency_key_reused_with_a_different_type_is_422() {
    reusing_the_key_is_refused("key-type", |wallet| operation(wallet, "WITHDRAW", 10)).await;
}

#[tokio::test]
async fn idempotency_key_reused_for_a_different_wallet_is_422() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let other = app.funded_wallet(100).await;
    let key = HeaderValue::from_static("key-wallet");
    let first = with_key(&app, key.clone(), &operation(wallet, "WITHDRAW", 10)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let reuse = with_key(&app, key, &operation(other, "WITHDRAW", 10)).await;

    assert_problem(
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(app.balance(wallet).await, 90);
    assert_eq!(app.balance(other).await, 100);
    assert_eq!(app.history(other).await.len(), 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn idempotency_key_reused_for_a_deposit_to_a_new_wallet_does_not_create_it() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let new_wallet = Uuid::new_v4();
    let key = HeaderValue::from_static("key-new-wallet");
    let first = with_key(&app, key.clone(), &operation(wallet, "DEPOSIT", 10)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let reuse = with_key(&app, key, &operation(new_wallet, "DEPOSIT", 10)).await;

    assert_problem(
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    let response = app.get(&format!("/api/v1/wallets/{new_wallet}")).await;
    assert_problem(response, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    assert_eq!(app.balance(wallet).await, 110);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn operation_id_reused_with_a_different_payload_is_422() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let other = app.funded_wallet(100).await;
    let id = Uuid::new_v4();
    let first = Reply::of(app.operation(&with_id(wallet, "DEPOSIT", 10, id)).await).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    for (case, body) in [
        ("amount", with_id(wallet, "DEPOSIT", 11, id)),
        ("type", with_id(wallet, "WITHDRAW", 10, id)),
        ("wallet", with_id(other, "DEPOSIT", 10, id)),
    ] {
        let reuse = Reply::of(app.operation(&body).await).await;
        assert_eq!(reuse.status, StatusCode::UNPROCESSABLE_ENTITY, "{case}");
        assert_problem(
            &reuse,
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
        )
        .await;
    }

    assert_eq!(app.balance(wallet).await, 110);
    assert_eq!(app.balance(other).await, 100);
    assert_eq!(app.history(wallet).await.len(), 2);
    assert_eq!(app.history(other).await.len(), 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn rejected_operation_id_reused_with_a_different_payload_is_422() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let id = Uuid::new_v4();
    let first = Reply::of(app.operation(&with_id(wallet, "WITHDRAW", 50, id)).await).await;
    assert_problem(&first, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;

    let reuse = Reply::of(app.operation(&with_id(wallet, "WITHDRAW", 5, id)).await).await;

    assert_problem(
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(app.balance(wallet).await, 10);
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- invalid keys

#[tokio::test]
async fn operation_id_and_idempotency_key_together_are_400() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let answer = with_key(
        &app,
        HeaderValue::from_static("both"),
        &with_id(wallet, "DEPOSIT", 10, Uuid::new_v4()),
    )
    .await;

    assert_problem(&answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(app.balance(wallet).await, 100);
    assert_eq!(app.history(wallet).await.len(), 1);
}

#[tokio::test]
async fn invalid_idempotency_keys_are_400() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let body = operation(wallet, "DEPOSIT", 10);
    let cases = [
        ("empty", HeaderValue::from_static("")),
        (
            "256 characters",
            HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        ),
        ("tab", HeaderValue::from_str("a\tb").unwrap()),
        (
            "non-ASCII byte",
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        ),
    ];

    for (case, key) in cases {
        let answer = with_key(&app, key, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{case}: {}",
            answer.text()
        );
        assert_problem(&answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }

    assert_eq!(app.balance(wallet).await, 100);
    assert_eq!(app.history(wallet).await.len(), 1);
}

#[tokio::test]
async fn two_idempotency_key_headers_are_400() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let response = app
        .client
        .post(app.url("/api/v1/wallet"))
        .header(IDEMPOTENCY_KEY, "one")
        .header(IDEMPOTENCY_KEY, "two")
        .json(&operation(wallet, "DEPOSIT", 10))
        .send()
        .await
        .unwrap();

    assert_problem(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(app.balance(wallet).await, 100);
}

#[tokio::test]
async fn idempotency_key_of_255_printable_characters_is_accepted() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let key = HeaderValue::from_str(&"~".repeat(255)).unwrap();
    let body = operation(wallet, "DEPOSIT", 10);

    let first = with_key(&app, key.clone(), &body).await;
    let second = with_key(&app, key, &body).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(second.replayed(), Some("true"));
    assert_eq!(app.balance(wallet).await, 110);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_of_one_key_are_applied_once_with_one_answer() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let body = operation(wallet, "DEPOSIT", 7);

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = app.url("/api/v1/wallet");
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .header(IDEMPOTENCY_KEY, "one-key-fifty-times")
                .json(&body)
                .send()
                .await
                .unwrap();
            Reply::of(response).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    let first = &answers[0];
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.json()["balance"], 107);
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(
            answer.text(),
            first.text(),
            "every duplicate gets the same body"
        );
    }
    let originals = answers.iter().filter(|a| a.replayed().is_none()).count();
    assert_eq!(originals, 1, "exactly one answer is not a replay");
    assert_eq!(app.balance(wallet).await, 107);
    assert_eq!(app.history(wallet).await.len(), 2);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_reused_id_is_reported_even_when_the_new_payload_names_a_missing_wallet() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let id = Uuid::new_v4();
    let deposit =
        json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": 1, "operationId": id});
    assert_eq!(app.operation(&deposit).await.status(), StatusCode::OK);
    let elsewhere = json!({
        "walletId": Uuid::new_v4(), "operationType": "WITHDRAW", "amount": 1, "operationId": id,
    });
    let (status, body) = status_and_body(app.operation(&elsewhere).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "IDEMPOTENCY_KEY_REUSED");
}
