//! Black-box tests of holds (design.md "Ledger v2 -> Holds" and the holds contract): a
//! withdrawal or a transfer sent with `"pending": true` reserves its amount; wallets show
//! `balance`, `held` and `available`; `GET /api/v1/holds/{holdId}`, `POST .../confirm` and
//! `POST .../void`; expiry at `expiresAt` by itself; the entries each step leaves in the
//! histories.
//!
//! Malformed ids in a path are checked on the router in process, as in `endpoints`.

use crate::helpers::router::{request, router};
use crate::helpers::{
    MAX_MONEY, Reply, TestApp, assert_problem, assert_problem_in, assert_timestamp, assert_uuid,
    eventually, field_names, malformed_ids, operation_body, pending, spawn_app, status_and_body,
    timestamp, transfer_body,
};
use crate::transfers::RECORD_FIELDS;
use axum::body::Body;
use axum::http::Method;
use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A wallet's fields, sorted.
const WALLET_FIELDS: [&str; 6] = [
    "available",
    "balance",
    "createdAt",
    "held",
    "updatedAt",
    "walletId",
];

/// The fields of the answer to a pending withdrawal, sorted; with a timeout it has
/// `expiresAt` too.
const PENDING_FIELDS: [&str; 9] = [
    "amount",
    "available",
    "balance",
    "createdAt",
    "holdId",
    "operationId",
    "operationType",
    "status",
    "walletId",
];

/// The fields of a pending withdrawal's hold record, sorted; a transfer's has `toWalletId`,
/// one with a timeout `expiresAt`, a resolved one `resolvedAt`, a confirmed one
/// `confirmedAmount`.
const HOLD_FIELDS: [&str; 6] = [
    "amount",
    "createdAt",
    "holdId",
    "holdType",
    "status",
    "walletId",
];

/// How long a test waits for a hold to expire: expiry is due within about a second of
/// `expiresAt`; this bounds a hang on a loaded machine.
const EXPIRY_LIMIT: Duration = Duration::from_secs(10);

/// A hold with a timeout that no test outlives.
const LONG: Option<u64> = Some(3600);

/// `fields` and `more`, sorted: a record's shape with its optional fields.
fn with(fields: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    let mut all = [fields, more].concat();
    all.sort_unstable();
    all
}

/// A pending withdrawal named by a new id, with its answer.
async fn hold_withdrawal(
    app: &TestApp,
    wallet: Uuid,
    amount: u64,
    timeout: Option<u64>,
) -> (Uuid, Reply) {
    let id = Uuid::new_v4();
    let body = pending(
        operation_body(wallet, "WITHDRAW", amount, Some(id)),
        timeout,
    );
    (id, Reply::of(app.operation(&body).await).await)
}

/// A server with a wallet of 100 that holds `amount` for a pending withdrawal; the server,
/// the wallet and the hold's id.
async fn wallet_with_a_hold(amount: u64, timeout: Option<u64>) -> (TestApp, Uuid, Uuid) {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let hold = placed(hold_withdrawal(&app, wallet, amount, timeout).await);
    (app, wallet, hold)
}

/// A pending transfer named by a new id, with its answer.
async fn hold_transfer(
    app: &TestApp,
    from: Uuid,
    to: Uuid,
    amount: u64,
    timeout: Option<u64>,
) -> (Uuid, Reply) {
    let id = Uuid::new_v4();
    let body = pending(transfer_body(from, to, amount, Some(id)), timeout);
    (id, Reply::of(app.transfer(&body).await).await)
}

/// Checks that `answer` placed a hold and returns its id.
fn placed((id, answer): (Uuid, Reply)) -> Uuid {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["status"], "PENDING", "{}", answer.text());
    id
}

/// Checks that `answer` is a first answer with the hold record of `hold` in `status`, and
/// returns the record.
fn assert_resolved(answer: &Reply, hold: Uuid, status: &str) -> Value {
    let record = answer.json();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.replayed(), None, "a first answer: {record}");
    assert_eq!(record["holdId"], hold.to_string(), "{record}");
    assert_eq!(record["status"], status, "{record}");
    assert_timestamp(&record["resolvedAt"]);
    record
}

/// Checks that `answer` is `409 HOLD_NOT_PENDING` naming `hold`.
async fn assert_not_pending(case: &str, answer: &Reply, hold: Uuid) {
    let problem = assert_problem_in(case, answer, StatusCode::CONFLICT, "HOLD_NOT_PENDING").await;
    assert_eq!(problem["holdId"], hold.to_string(), "{case}: {problem}");
}

/// Checks that `answer` is `404 HOLD_NOT_FOUND`.
async fn assert_no_hold(case: &str, answer: &Reply) {
    assert_problem_in(case, answer, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
}

/// Checks that `entry`, a history item, is the resolution of `hold`: an id of its own,
/// `kind`, `status` and `amount`, with the balance and available amount after it.
fn assert_resolution(entry: &Value, hold: Uuid, (kind, status): (&str, &str), after: [u64; 3]) {
    let [amount, balance, available] = after;
    assert_ne!(
        assert_uuid(&entry["operationId"]),
        hold,
        "an id of its own: {entry}"
    );
    assert_eq!(entry["holdId"], hold.to_string(), "{entry}");
    assert_eq!(entry["operationType"], kind, "{entry}");
    assert_eq!(entry["status"], status, "{entry}");
    assert_eq!(entry["amount"], amount, "{entry}");
    assert_eq!(entry["balance"], balance, "{entry}");
    assert_eq!(entry["available"], available, "{entry}");
}

// ---------------------------------------------------------------- placing a hold

#[tokio::test]
async fn pending_withdrawal_reserves_its_amount_and_answers_pending_with_the_balance_unchanged() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let (id, answer) = hold_withdrawal(&app, wallet, 30, None).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.replayed(), None);
    let body = answer.json();
    assert_eq!(
        field_names(&body),
        PENDING_FIELDS,
        "no expiresAt without a timeout"
    );
    assert_eq!(body["operationId"], id.to_string());
    assert_eq!(body["holdId"], id.to_string());
    assert_eq!(body["walletId"], wallet.to_string());
    assert_eq!(body["operationType"], "WITHDRAW");
    assert_eq!(body["amount"], 30);
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["balance"], 100);
    assert_eq!(body["available"], 70);
    assert_timestamp(&body["createdAt"]);
    assert_eq!(app.funds(wallet).await, (100, 30, 70));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn pending_withdrawal_with_a_timeout_answers_when_it_expires() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let (_, answer) = hold_withdrawal(&app, wallet, 30, Some(600)).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(field_names(&body), with(&PENDING_FIELDS, &["expiresAt"]));
    let lifetime = timestamp(&body["expiresAt"]) - timestamp(&body["createdAt"]);
    assert!(
        (lifetime - TimeDelta::seconds(600)).abs() < TimeDelta::seconds(1),
        "expiresAt is createdAt + timeoutSeconds: {body}"
    );
    assert_eq!(app.funds(wallet).await, (100, 30, 70));
}

#[tokio::test]
async fn the_largest_timeout_is_accepted() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    let (_, answer) = hold_withdrawal(&app, wallet, 30, Some(u64::from(u32::MAX))).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(
        timestamp(&answer.json()["expiresAt"]).timestamp()
            > timestamp(&answer.json()["createdAt"]).timestamp() + i64::from(u32::MAX) - 2,
        "{}",
        answer.text()
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_wallet_shows_its_balance_held_and_available() {
    let app = spawn_app().await;
    let wallet = Uuid::new_v4();
    let (status, created) =
        status_and_body(app.create_wallet(Some(json!({ "walletId": wallet }))).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(field_names(&created), WALLET_FIELDS);
    assert_eq!(created["held"], 0, "{created}");
    assert_eq!(created["available"], 0, "{created}");
    assert_eq!(app.deposit(wallet, 100).await.status(), StatusCode::OK);
    let other = app.funded_wallet(0).await;

    placed(hold_withdrawal(&app, wallet, 30, None).await);
    placed(hold_transfer(&app, wallet, other, 20, LONG).await);

    let (status, body) = status_and_body(app.get(&format!("/api/v1/wallets/{wallet}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(field_names(&body), WALLET_FIELDS);
    assert_eq!(body["walletId"], wallet.to_string());
    assert_eq!(body["balance"], 100);
    assert_eq!(body["held"], 50);
    assert_eq!(body["available"], 50);
    assert_timestamp(&body["createdAt"]);
    assert_timestamp(&body["updatedAt"]);
    assert_eq!(
        app.funds(other).await,
        (0, 0, 0),
        "a destination holds nothing"
    );
}

#[tokio::test]
async fn pending_false_is_an_ordinary_withdrawal() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let id = Uuid::new_v4();
    let mut body = operation_body(wallet, "WITHDRAW", 30, Some(id));
    body["pending"] = json!(false);

    let (status, record) = status_and_body(app.operation(&body).await).await;

    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["status"], "APPLIED", "{record}");
    assert_eq!(record["balance"], 70, "{record}");
    assert_eq!(app.funds(wallet).await, (70, 0, 70));
    assert_no_hold("GET", &app.hold(id).await).await;
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- checked against available

#[tokio::test]
async fn a_withdrawal_beyond_available_but_within_the_balance_is_409_insufficient_funds() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    placed(hold_withdrawal(&app, wallet, 60, None).await);

    let refused = app.withdraw(wallet, 50).await;

    let problem = assert_problem(refused, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(problem["walletId"], wallet.to_string(), "{problem}");
    assert_eq!(problem["balance"], 100, "{problem}");
    assert_eq!(app.funds(wallet).await, (100, 60, 40));
    let (status, record) = status_and_body(app.withdraw(wallet, 40).await).await;
    assert_eq!(status, StatusCode::OK, "all of available: {record}");
    assert_eq!(app.funds(wallet).await, (60, 60, 0));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_transfer_beyond_available_but_within_the_balance_is_409_insufficient_funds() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    placed(hold_withdrawal(&app, from, 60, None).await);

    let refused = app.transfer(&transfer_body(from, to, 50, None)).await;

    let problem = assert_problem(refused, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(problem["walletId"], from.to_string(), "{problem}");
    assert_eq!(problem["balance"], 100, "{problem}");
    assert_eq!(app.funds(from).await, (100, 60, 40));
    let (status, record) =
        status_and_body(app.transfer(&transfer_body(from, to, 40, None)).await).await;
    assert_eq!(status, StatusCode::OK, "all of available: {record}");
    assert_eq!(app.funds(from).await, (60, 60, 0));
    assert_eq!(app.funds(to).await, (40, 0, 40));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_new_hold_beyond_available_but_within_the_balance_is_409_insufficient_funds() {
    let app = spawn_app().await;
    let (wallet, other) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    placed(hold_withdrawal(&app, wallet, 60, None).await);

    let (id, refused) = hold_withdrawal(&app, wallet, 50, None).await;

    let problem = assert_problem(&refused, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(problem["operationId"], id.to_string(), "{problem}");
    assert_eq!(problem["walletId"], wallet.to_string(), "{problem}");
    assert_eq!(problem["balance"], 100, "{problem}");
    assert_eq!(problem["available"], 40, "{problem}");
    placed(hold_withdrawal(&app, wallet, 40, None).await);
    assert_eq!(app.funds(wallet).await, (100, 100, 0));
    let (_, refused) = hold_transfer(&app, wallet, other, 1, None).await;
    let problem = assert_problem(&refused, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(problem["walletId"], wallet.to_string(), "{problem}");
    assert_eq!(app.funds(wallet).await, (100, 100, 0));
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- malformed requests

#[tokio::test]
async fn a_pending_deposit_is_400_invalid_request_and_stores_nothing() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;

    for timeout in [None, Some(60)] {
        let id = Uuid::new_v4();
        let body = pending(operation_body(wallet, "DEPOSIT", 10, Some(id)), timeout);
        let answer = app.operation(&body).await;
        let case = format!("pending deposit, timeout {timeout:?}");
        assert_problem_in(&case, answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        let stored = app
            .get(&format!("/api/v1/wallets/{wallet}/operations/{id}"))
            .await;
        assert_problem_in(&case, stored, StatusCode::NOT_FOUND, "OPERATION_NOT_FOUND").await;
    }

    assert_eq!(app.funds(wallet).await, (100, 0, 100));
    assert_eq!(app.history(wallet).await.len(), 1);
}

#[tokio::test]
async fn a_timeout_without_pending_is_400_invalid_request() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let mut cases = Vec::new();
    for (name, body) in [
        ("withdrawal", operation_body(from, "WITHDRAW", 10, None)),
        ("deposit", operation_body(from, "DEPOSIT", 10, None)),
        ("transfer", transfer_body(from, to, 10, None)),
    ] {
        let mut without = body.clone();
        without["timeoutSeconds"] = json!(60);
        let mut not_pending = without.clone();
        not_pending["pending"] = json!(false);
        cases.push((format!("{name} with a timeout"), without));
        cases.push((
            format!("{name}, pending false, with a timeout"),
            not_pending,
        ));
    }

    for (case, body) in &cases {
        let path = if body.get("fromWalletId").is_some() {
            "/api/v1/transfers"
        } else {
            "/api/v1/wallet"
        };
        let answer = app.post(path, Some(body)).await;
        assert_problem_in(case, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }

    assert_eq!(app.funds(from).await, (100, 0, 100));
    assert_eq!(app.funds(to).await, (0, 0, 0));
    assert_eq!(app.history(from).await.len(), 1);
}

#[tokio::test]
async fn malformed_pending_flags_and_timeouts_are_400_invalid_request() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let timeouts = [
        json!(0),
        json!(-1),
        json!(u64::from(u32::MAX) + 1),
        json!(1.5),
        json!("60"),
        json!(true),
    ];
    let flags = [json!("true"), json!(1), json!([true])];
    for (path, body) in [
        ("/api/v1/wallet", operation_body(from, "WITHDRAW", 10, None)),
        ("/api/v1/transfers", transfer_body(from, to, 10, None)),
    ] {
        for timeout in &timeouts {
            let mut malformed = pending(body.clone(), None);
            malformed["timeoutSeconds"] = timeout.clone();
            let answer = app.post(path, Some(&malformed)).await;
            let case = format!("{path} timeoutSeconds {timeout}");
            assert_problem_in(&case, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        }
        for flag in &flags {
            let mut malformed = body.clone();
            malformed["pending"] = flag.clone();
            let answer = app.post(path, Some(&malformed)).await;
            let case = format!("{path} pending {flag}");
            assert_problem_in(&case, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        }
    }

    assert_eq!(app.funds(from).await, (100, 0, 100));
    assert_eq!(app.history(from).await.len(), 1);
}

#[tokio::test]
async fn a_pending_withdrawal_from_an_unknown_wallet_is_404_and_holds_nothing() {
    let app = spawn_app().await;
    let wallet = Uuid::new_v4();

    let (id, answer) = hold_withdrawal(&app, wallet, 10, LONG).await;

    assert_problem(&answer, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    assert_no_hold("GET", &app.hold(id).await).await;
    let read = app.get(&format!("/api/v1/wallets/{wallet}")).await;
    assert_problem(read, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
}

// ---------------------------------------------------------------- stored answers and replays

#[tokio::test]
async fn a_rejected_pending_withdrawal_is_stored_and_replayed_after_funding() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(10).await;
    let id = Uuid::new_v4();
    let body = pending(operation_body(wallet, "WITHDRAW", 50, Some(id)), Some(60));
    let first = Reply::of(app.operation(&body).await).await;
    let problem = assert_problem(&first, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(problem["operationId"], id.to_string(), "{problem}");
    assert_eq!(problem["balance"], 10, "{problem}");
    assert_eq!(problem["available"], 10, "{problem}");
    assert_eq!(app.deposit(wallet, 100).await.status(), StatusCode::OK);

    let retry = Reply::of(app.operation(&body).await).await;

    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.text());
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.text(), first.text(), "byte-identical body");
    assert_eq!(app.funds(wallet).await, (110, 0, 110));
    let mut other_timeout = body.clone();
    other_timeout["timeoutSeconds"] = json!(61);
    let reuse = app.operation(&other_timeout).await;
    assert_problem(
        reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_repeated_pending_withdrawal_replays_its_answer_and_holds_once() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let id = Uuid::new_v4();
    let body = pending(operation_body(wallet, "WITHDRAW", 30, Some(id)), Some(600));
    let first = Reply::of(app.operation(&body).await).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let second = Reply::of(app.operation(&body).await).await;

    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.replayed(), Some("true"));
    assert_eq!(second.text(), first.text(), "byte-identical body");
    assert_eq!(app.funds(wallet).await, (100, 30, 70));
    assert_eq!(app.history(wallet).await.len(), 2);
    // Once resolved, the request is still answered as it was.
    assert_resolved(&app.confirm_hold(id, None).await, id, "CONFIRMED");
    let third = Reply::of(app.operation(&body).await).await;
    assert_eq!(third.replayed(), Some("true"));
    assert_eq!(third.text(), first.text(), "byte-identical body");
    assert_eq!(app.funds(wallet).await, (70, 0, 70));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_pending_request_id_reused_with_another_payload_is_422() {
    let app = spawn_app().await;
    let (wallet, other) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let id = Uuid::new_v4();
    let withdrawal = |amount| operation_body(wallet, "WITHDRAW", amount, Some(id));
    placed((
        id,
        Reply::of(app.operation(&pending(withdrawal(30), Some(600))).await).await,
    ));
    let mut not_pending = withdrawal(30);
    not_pending["pending"] = json!(false);
    let cases = [
        ("not pending", withdrawal(30)),
        ("pending false", not_pending),
        ("without its timeout", pending(withdrawal(30), None)),
        ("another timeout", pending(withdrawal(30), Some(601))),
        ("another amount", pending(withdrawal(31), Some(600))),
        (
            "a pending transfer",
            pending(transfer_body(wallet, other, 30, Some(id)), Some(600)),
        ),
    ];

    for (case, body) in &cases {
        let path = if body.get("fromWalletId").is_some() {
            "/api/v1/transfers"
        } else {
            "/api/v1/wallet"
        };
        let answer = app.post(path, Some(body)).await;
        let code = "IDEMPOTENCY_KEY_REUSED";
        assert_problem_in(case, &answer, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    // And the other way round: an ordinary withdrawal's id cannot name a hold.
    let ordinary = Uuid::new_v4();
    let body = operation_body(wallet, "WITHDRAW", 5, Some(ordinary));
    assert_eq!(app.operation(&body).await.status(), StatusCode::OK);
    let reuse = app.operation(&pending(body, None)).await;
    let code = "IDEMPOTENCY_KEY_REUSED";
    assert_problem_in("pending", reuse, StatusCode::UNPROCESSABLE_ENTITY, code).await;

    assert_eq!(app.funds(wallet).await, (95, 30, 65));
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- GET /api/v1/holds/{holdId}

#[tokio::test]
async fn get_hold_returns_the_pending_hold() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let (id, answer) = hold_withdrawal(&app, wallet, 30, Some(600)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let read = app.hold(id).await;

    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    let record = read.json();
    assert_eq!(field_names(&record), with(&HOLD_FIELDS, &["expiresAt"]));
    assert_eq!(record["holdId"], id.to_string());
    assert_eq!(record["holdType"], "WITHDRAW");
    assert_eq!(record["walletId"], wallet.to_string());
    assert_eq!(record["amount"], 30);
    assert_eq!(record["status"], "PENDING");
    assert_eq!(
        timestamp(&record["expiresAt"]),
        timestamp(&answer.json()["expiresAt"])
    );
    assert_timestamp(&record["createdAt"]);
}

#[tokio::test]
async fn get_hold_of_an_unknown_id_or_of_an_ordinary_operation_is_404_hold_not_found() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(0).await, app.funded_wallet(0).await);
    let (_, deposit) = status_and_body(app.deposit(from, 100).await).await;
    let (_, withdrawal) = status_and_body(app.withdraw(from, 10).await).await;
    let (_, transfer) =
        status_and_body(app.transfer(&transfer_body(from, to, 10, None)).await).await;

    for (case, id) in [
        ("unknown", Uuid::new_v4()),
        ("deposit", assert_uuid(&deposit["operationId"])),
        ("withdrawal", assert_uuid(&withdrawal["operationId"])),
        ("transfer", assert_uuid(&transfer["transferId"])),
    ] {
        assert_no_hold(case, &app.hold(id).await).await;
    }
}

#[tokio::test]
async fn a_rejected_pending_request_holds_nothing_and_is_404_hold_not_found() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);
    let (withdrawal, answer) = hold_withdrawal(&app, from, 11, None).await;
    assert_problem(&answer, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    let (transfer, answer) = hold_transfer(&app, from, to, 11, LONG).await;
    assert_problem(&answer, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;

    for id in [withdrawal, transfer] {
        assert_no_hold("GET", &app.hold(id).await).await;
        assert_no_hold("confirm", &app.confirm_hold(id, None).await).await;
        assert_no_hold("void", &app.void_hold(id).await).await;
    }

    assert_eq!(app.funds(from).await, (10, 0, 10));
    assert_eq!(app.funds(to).await, (0, 0, 0));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn confirming_or_voiding_an_unknown_hold_is_404_hold_not_found() {
    let app = spawn_app().await;
    let id = Uuid::new_v4();

    assert_no_hold("confirm", &app.confirm_hold(id, None).await).await;
    let whole = json!({"amount": 5});
    assert_no_hold(
        "confirm an amount",
        &app.confirm_hold(id, Some(&whole)).await,
    )
    .await;
    assert_no_hold("void", &app.void_hold(id).await).await;
}

#[tokio::test]
async fn hold_requests_with_a_malformed_id_are_400() {
    let router = router();
    let id = Uuid::new_v4();

    for spelling in malformed_ids(id) {
        let hold = format!("/api/v1/holds/{spelling}");
        let answer = router.get(&hold).await;
        assert_problem_in(&hold, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        for action in ["confirm", "void"] {
            let path = format!("{hold}/{action}");
            let answer = router
                .send(request(Method::POST, &path).body(Body::empty()).unwrap())
                .await;
            assert_problem_in(&path, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        }
    }
}

// ---------------------------------------------------------------- confirm

#[tokio::test]
async fn confirming_a_hold_in_full_withdraws_its_amount() {
    let (app, wallet, id) = wallet_with_a_hold(30, Some(600)).await;

    let answer = app.confirm_hold(id, None).await;

    let record = assert_resolved(&answer, id, "CONFIRMED");
    assert_eq!(
        field_names(&record),
        with(
            &HOLD_FIELDS,
            &["confirmedAmount", "expiresAt", "resolvedAt"]
        )
    );
    assert_eq!(record["holdType"], "WITHDRAW");
    assert_eq!(record["walletId"], wallet.to_string());
    assert_eq!(record["amount"], 30);
    assert_eq!(record["confirmedAmount"], 30);
    assert_eq!(app.funds(wallet).await, (70, 0, 70));
    assert_eq!(
        app.hold(id).await.json(),
        record,
        "GET shows the same record"
    );
    let history = app.history(wallet).await;
    assert_eq!(history.len(), 3, "deposit, hold, confirmation: {history:?}");
    let confirmation = &history[0];
    assert_resolution(confirmation, id, ("WITHDRAW", "APPLIED"), [30, 70, 70]);
    let hold = &history[1];
    assert_eq!(hold["operationId"], id.to_string(), "{hold}");
    assert_eq!(hold["holdId"], id.to_string(), "{hold}");
    assert_eq!(hold["status"], "PENDING", "entries are immutable: {hold}");
    assert_eq!(hold["amount"], 30, "{hold}");
    assert_eq!(hold["balance"], 100, "{hold}");
    assert_eq!(hold["available"], 70, "{hold}");
    assert_timestamp(&hold["expiresAt"]);
    let confirmation_id = assert_uuid(&confirmation["operationId"]);
    let (status, read) = status_and_body(
        app.get(&format!(
            "/api/v1/wallets/{wallet}/operations/{confirmation_id}"
        ))
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(&read, confirmation);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn confirming_part_of_a_hold_withdraws_that_part_and_releases_the_rest() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    placed(hold_withdrawal(&app, wallet, 20, None).await);
    let id = placed(hold_withdrawal(&app, wallet, 50, None).await);
    assert_eq!(app.funds(wallet).await, (100, 70, 30));

    let answer = app.confirm_hold(id, Some(&json!({"amount": 30}))).await;

    let record = assert_resolved(&answer, id, "CONFIRMED");
    assert_eq!(
        field_names(&record),
        with(&HOLD_FIELDS, &["confirmedAmount", "resolvedAt"])
    );
    assert_eq!(record["amount"], 50);
    assert_eq!(record["confirmedAmount"], 30);
    assert_eq!(
        app.funds(wallet).await,
        (70, 20, 50),
        "the other hold stays"
    );
    let confirmation = &app.history(wallet).await[0];
    assert_resolution(confirmation, id, ("WITHDRAW", "APPLIED"), [30, 70, 50]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn confirming_with_an_empty_object_takes_the_whole_hold() {
    let (app, wallet, id) = wallet_with_a_hold(40, None).await;

    let answer = app.confirm_hold(id, Some(&json!({}))).await;

    let record = assert_resolved(&answer, id, "CONFIRMED");
    assert_eq!(record["confirmedAmount"], 40);
    assert_eq!(app.funds(wallet).await, (60, 0, 60));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn confirming_more_than_held_is_400_invalid_amount_and_the_hold_stays_pending() {
    let (app, wallet, id) = wallet_with_a_hold(30, None).await;
    let amounts = [
        json!(31),
        json!(0),
        json!(-1),
        json!(MAX_MONEY + 1),
        json!(1.5),
        json!("5"),
    ];

    for amount in &amounts {
        let answer = app
            .confirm_hold(id, Some(&json!({ "amount": amount })))
            .await;
        let case = format!("amount {amount}");
        assert_problem_in(&case, &answer, StatusCode::BAD_REQUEST, "INVALID_AMOUNT").await;
    }
    for (case, body) in [
        ("unknown field", json!({"amount": 5, "note": "x"})),
        ("an array", json!([5])),
        ("a number", json!(5)),
    ] {
        let answer = app.confirm_hold(id, Some(&body)).await;
        assert_problem_in(case, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }

    assert_eq!(app.hold(id).await.json()["status"], "PENDING");
    assert_eq!(app.funds(wallet).await, (100, 30, 70));
    // Nothing was stored: the hold is confirmed afresh.
    let answer = app.confirm_hold(id, Some(&json!({"amount": 30}))).await;
    assert_resolved(&answer, id, "CONFIRMED");
    assert_eq!(app.funds(wallet).await, (70, 0, 70));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_repeated_confirm_replays_its_answer_and_withdraws_once() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let (partial, whole) = (
        placed(hold_withdrawal(&app, wallet, 30, None).await),
        placed(hold_withdrawal(&app, wallet, 40, None).await),
    );
    let part = json!({"amount": 20});
    let first = app.confirm_hold(partial, Some(&part)).await;
    assert_resolved(&first, partial, "CONFIRMED");

    let second = app.confirm_hold(partial, Some(&part)).await;

    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.replayed(), Some("true"));
    assert_eq!(second.text(), first.text(), "byte-identical body");
    // The same confirmed amount, spelled out or left to the hold, is the same confirm.
    let first = app.confirm_hold(whole, None).await;
    assert_resolved(&first, whole, "CONFIRMED");
    let spelled = app.confirm_hold(whole, Some(&json!({"amount": 40}))).await;
    assert_eq!(spelled.status, StatusCode::OK, "{}", spelled.text());
    assert_eq!(spelled.replayed(), Some("true"));
    assert_eq!(spelled.text(), first.text(), "byte-identical body");
    assert_eq!(app.funds(wallet).await, (40, 0, 40));
    assert_eq!(app.history(wallet).await.len(), 5);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn another_confirm_or_a_void_after_a_confirm_is_409_hold_not_pending() {
    let (app, wallet, id) = wallet_with_a_hold(30, None).await;
    assert_resolved(
        &app.confirm_hold(id, Some(&json!({"amount": 20}))).await,
        id,
        "CONFIRMED",
    );

    let another = json!({"amount": 10});
    assert_not_pending(
        "another amount",
        &app.confirm_hold(id, Some(&another)).await,
        id,
    )
    .await;
    assert_not_pending("the whole hold", &app.confirm_hold(id, None).await, id).await;
    assert_not_pending("void", &app.void_hold(id).await, id).await;

    assert_eq!(app.hold(id).await.json()["confirmedAmount"], 20);
    assert_eq!(app.funds(wallet).await, (80, 0, 80));
    assert_eq!(app.history(wallet).await.len(), 3);
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- void

#[tokio::test]
async fn voiding_a_hold_releases_it_and_a_repeat_replays() {
    let (app, wallet, id) = wallet_with_a_hold(30, Some(600)).await;

    let first = app.void_hold(id).await;

    let record = assert_resolved(&first, id, "VOIDED");
    assert_eq!(
        field_names(&record),
        with(&HOLD_FIELDS, &["expiresAt", "resolvedAt"])
    );
    assert_eq!(record["amount"], 30);
    assert_eq!(app.funds(wallet).await, (100, 0, 100));
    let history = app.history(wallet).await;
    assert_eq!(history.len(), 3, "{history:?}");
    assert_resolution(&history[0], id, ("WITHDRAW", "VOIDED"), [30, 100, 100]);
    for repeat in [None, Some(json!({}))] {
        let again = app
            .post(&format!("/api/v1/holds/{id}/void"), repeat.as_ref())
            .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text());
        assert_eq!(again.replayed(), Some("true"), "body {repeat:?}");
        assert_eq!(again.text(), first.text(), "byte-identical body");
    }
    assert_eq!(app.history(wallet).await.len(), 3);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn confirming_a_voided_hold_is_409_hold_not_pending() {
    let (app, wallet, id) = wallet_with_a_hold(30, None).await;
    assert_resolved(&app.void_hold(id).await, id, "VOIDED");

    assert_not_pending("confirm", &app.confirm_hold(id, None).await, id).await;

    assert_eq!(app.hold(id).await.json()["status"], "VOIDED");
    assert_eq!(app.funds(wallet).await, (100, 0, 100));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_hold_voided_through_another_instance_is_409_on_the_one_that_placed_it() {
    // The placing instance remembers its holds as pending; that memory must not decide.
    // Alone on its wallet, the stale hold is more than the wallet holds; beside another
    // hold, it would fit.
    let (app, wallet, alone) = wallet_with_a_hold(30, None).await;
    let beside = app.spawn_beside(&[]).await;
    assert_resolved(&beside.void_hold(alone).await, alone, "VOIDED");
    assert_not_pending("alone", &app.confirm_hold(alone, None).await, alone).await;

    let other = placed(hold_withdrawal(&app, wallet, 40, None).await);
    let stale = placed(hold_withdrawal(&app, wallet, 30, None).await);
    assert_resolved(&beside.void_hold(stale).await, stale, "VOIDED");
    assert_not_pending(
        "beside another hold",
        &app.confirm_hold(stale, None).await,
        stale,
    )
    .await;
    let void = app.void_hold(stale).await;
    assert_eq!(void.replayed(), Some("true"), "a replay: {}", void.text());

    assert_eq!(app.funds(wallet).await, (100, 40, 60));
    assert_eq!(app.hold(other).await.json()["status"], "PENDING");
    assert_eq!(
        app.history(wallet).await.len(),
        6,
        "no entry for a refused decision"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_replayed_placement_does_not_make_a_voided_hold_confirmable() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let id = Uuid::new_v4();
    let body = pending(operation_body(wallet, "WITHDRAW", 30, Some(id)), None);
    placed((id, Reply::of(app.operation(&body).await).await));
    assert_resolved(&app.void_hold(id).await, id, "VOIDED");

    let replay = Reply::of(app.operation(&body).await).await;
    assert_eq!(replay.replayed(), Some("true"), "{}", replay.text());
    assert_not_pending("confirm", &app.confirm_hold(id, None).await, id).await;
    assert_eq!(app.funds(wallet).await, (100, 0, 100));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_void_with_a_body_other_than_an_empty_object_is_400() {
    let (app, wallet, id) = wallet_with_a_hold(30, None).await;

    let answer = app
        .post(
            &format!("/api/v1/holds/{id}/void"),
            Some(&json!({"amount": 30})),
        )
        .await;

    assert_problem(&answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(app.hold(id).await.json()["status"], "PENDING");
    assert_eq!(app.funds(wallet).await, (100, 30, 70));
}

// ---------------------------------------------------------------- pending transfers

#[tokio::test]
async fn a_pending_transfer_reserves_on_the_source_and_leaves_the_destination_untouched() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(5).await);

    let (id, answer) = hold_transfer(&app, from, to, 30, None).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        field_names(&body),
        RECORD_FIELDS,
        "no expiresAt without a timeout"
    );
    assert_eq!(body["transferId"], id.to_string());
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["amount"], 30);
    assert_eq!(body["fromBalance"], 100);
    assert_eq!(body["toBalance"], 5);
    assert_eq!(app.funds(from).await, (100, 30, 70));
    assert_eq!(app.funds(to).await, (5, 0, 5));
    assert_eq!(app.history(to).await.len(), 1, "nothing on the destination");
    let out = &app.history(from).await[0];
    assert_eq!(out["operationType"], "TRANSFER_OUT", "{out}");
    assert_eq!(out["operationId"], id.to_string(), "{out}");
    assert_eq!(out["transferId"], id.to_string(), "{out}");
    assert_eq!(out["holdId"], id.to_string(), "{out}");
    assert_eq!(out["counterpartyWalletId"], to.to_string(), "{out}");
    assert_eq!(out["status"], "PENDING", "{out}");
    assert_eq!(out["amount"], 30, "{out}");
    assert_eq!(out["balance"], 100, "{out}");
    assert_eq!(out["available"], 70, "{out}");
    let record = app.hold(id).await.json();
    assert_eq!(field_names(&record), with(&HOLD_FIELDS, &["toWalletId"]));
    assert_eq!(record["holdType"], "TRANSFER", "{record}");
    assert_eq!(record["walletId"], from.to_string(), "{record}");
    assert_eq!(record["toWalletId"], to.to_string(), "{record}");
    assert_eq!(record["status"], "PENDING", "{record}");
    let (status, read) = status_and_body(app.get(&format!("/api/v1/transfers/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["status"], "PENDING", "{read}");
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_pending_transfer_with_a_timeout_answers_when_it_expires() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);

    let (_, answer) = hold_transfer(&app, from, to, 30, Some(600)).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(field_names(&body), with(&RECORD_FIELDS, &["expiresAt"]));
    let lifetime = timestamp(&body["expiresAt"]) - timestamp(&body["createdAt"]);
    assert!(
        (lifetime - TimeDelta::seconds(600)).abs() < TimeDelta::seconds(1),
        "expiresAt is createdAt + timeoutSeconds: {body}"
    );
}

#[tokio::test]
async fn a_pending_transfer_to_an_unknown_wallet_is_404_and_holds_nothing() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, Uuid::new_v4());

    let (id, answer) = hold_transfer(&app, from, to, 30, LONG).await;

    let problem = assert_problem(&answer, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    assert_eq!(problem["walletId"], to.to_string(), "{problem}");
    assert_no_hold("GET", &app.hold(id).await).await;
    assert_eq!(app.funds(from).await, (100, 0, 100));
    assert_eq!(app.history(from).await.len(), 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn confirming_a_pending_transfer_moves_the_confirmed_amount_to_the_destination() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(5).await);
    let id = placed(hold_transfer(&app, from, to, 50, None).await);

    let answer = app.confirm_hold(id, Some(&json!({"amount": 30}))).await;

    let record = assert_resolved(&answer, id, "CONFIRMED");
    assert_eq!(
        field_names(&record),
        with(
            &HOLD_FIELDS,
            &["confirmedAmount", "resolvedAt", "toWalletId"]
        )
    );
    assert_eq!(record["holdType"], "TRANSFER");
    assert_eq!(record["amount"], 50);
    assert_eq!(record["confirmedAmount"], 30);
    assert_eq!(app.funds(from).await, (70, 0, 70));
    assert_eq!(app.funds(to).await, (35, 0, 35));
    let out = &app.history(from).await[0];
    assert_resolution(out, id, ("TRANSFER_OUT", "APPLIED"), [30, 70, 70]);
    assert_eq!(out["transferId"], id.to_string(), "{out}");
    assert_eq!(out["counterpartyWalletId"], to.to_string(), "{out}");
    let destination = app.history(to).await;
    assert_eq!(destination.len(), 2, "{destination:?}");
    let into = &destination[0];
    assert_eq!(into["operationType"], "TRANSFER_IN", "{into}");
    assert_eq!(into["status"], "APPLIED", "{into}");
    assert_eq!(into["transferId"], id.to_string(), "{into}");
    assert_eq!(into["counterpartyWalletId"], from.to_string(), "{into}");
    assert_eq!(into["amount"], 30, "{into}");
    assert_eq!(into["balance"], 35, "{into}");
    assert_eq!(into["available"], 35, "{into}");
    assert_ne!(assert_uuid(&into["operationId"]), id, "{into}");
    let (_, transfer) = status_and_body(app.get(&format!("/api/v1/transfers/{id}")).await).await;
    assert_eq!(
        transfer["status"], "PENDING",
        "the answer to the request: {transfer}"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn voiding_a_pending_transfer_leaves_the_destination_untouched() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(5).await);
    let id = placed(hold_transfer(&app, from, to, 50, LONG).await);

    let answer = app.void_hold(id).await;

    assert_resolved(&answer, id, "VOIDED");
    assert_eq!(app.funds(from).await, (100, 0, 100));
    assert_eq!(app.funds(to).await, (5, 0, 5));
    assert_eq!(app.history(to).await.len(), 1);
    let out = &app.history(from).await[0];
    assert_resolution(out, id, ("TRANSFER_OUT", "VOIDED"), [50, 100, 100]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn confirming_a_transfer_past_the_destination_limit_is_409_and_the_hold_stays_pending() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let id = placed(hold_transfer(&app, from, to, 50, None).await);
    let full = MAX_MONEY - 10;
    assert_eq!(app.deposit(to, full).await.status(), StatusCode::OK);

    let answer = app.confirm_hold(id, None).await;

    assert_problem(&answer, StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED").await;
    assert_eq!(app.hold(id).await.json()["status"], "PENDING");
    assert_eq!(app.funds(from).await, (100, 50, 50));
    assert_eq!(app.funds(to).await, (full, 0, full));
    // Nothing was stored: with room at the destination the hold is confirmed afresh.
    assert_eq!(app.withdraw(to, 40).await.status(), StatusCode::OK);
    let retry = app.confirm_hold(id, None).await;
    assert_resolved(&retry, id, "CONFIRMED");
    assert_eq!(app.funds(to).await, (MAX_MONEY, 0, MAX_MONEY));
    assert_eq!(app.funds(from).await, (50, 0, 50));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_pending_transfer_the_destination_could_not_take_is_a_stored_409_that_holds_nothing() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let full = MAX_MONEY - 10;
    assert_eq!(app.deposit(to, full).await.status(), StatusCode::OK);

    let (id, answer) = hold_transfer(&app, from, to, 50, None).await;

    assert_problem(&answer, StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED").await;
    assert_eq!(app.hold(id).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.funds(from).await, (100, 0, 100));
    assert_eq!(app.funds(to).await, (full, 0, full));
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- expiry

/// Waits, without a request that names the hold, until `wallet` holds nothing any more.
async fn wait_until_released(app: &TestApp, wallet: Uuid) {
    eventually(
        &format!("wallet {wallet} released"),
        EXPIRY_LIMIT,
        async || (app.funds(wallet).await.1 == 0).then_some(()),
    )
    .await;
}

#[tokio::test]
async fn a_hold_expires_by_itself_at_its_timeout() {
    let (app, wallet, id) = wallet_with_a_hold(30, Some(1)).await;

    wait_until_released(&app, wallet).await;

    let record = app.hold(id).await.json();
    assert_eq!(record["status"], "EXPIRED", "{record}");
    assert_eq!(
        field_names(&record),
        with(&HOLD_FIELDS, &["expiresAt", "resolvedAt"])
    );
    assert!(
        timestamp(&record["resolvedAt"]) >= timestamp(&record["expiresAt"]),
        "{record}"
    );
    assert_eq!(app.funds(wallet).await, (100, 0, 100));
    let history = app.history(wallet).await;
    assert_eq!(history.len(), 3, "{history:?}");
    assert_resolution(&history[0], id, ("WITHDRAW", "EXPIRED"), [30, 100, 100]);
    assert_not_pending("confirm", &app.confirm_hold(id, None).await, id).await;
    assert_not_pending("void", &app.void_hold(id).await, id).await;
    assert_eq!(app.funds(wallet).await, (100, 0, 100));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn an_expired_pending_transfer_never_reaches_the_destination() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(5).await);
    let id = placed(hold_transfer(&app, from, to, 30, Some(1)).await);

    wait_until_released(&app, from).await;

    assert_eq!(app.hold(id).await.json()["status"], "EXPIRED");
    let out = &app.history(from).await[0];
    assert_resolution(out, id, ("TRANSFER_OUT", "EXPIRED"), [30, 100, 100]);
    assert_not_pending("confirm", &app.confirm_hold(id, None).await, id).await;
    assert_eq!(app.funds(from).await, (100, 0, 100));
    assert_eq!(app.funds(to).await, (5, 0, 5));
    assert_eq!(app.history(to).await.len(), 1);
    app.assert_ledger_consistent().await;
}
