//! Black-box tests of transfers (design.md "Ledger v2 -> Transfers" and the transfers
//! contract): `POST /api/v1/transfers`, `GET /api/v1/transfers/{transferId}`, the two legs in
//! the wallets' histories, stored rejections, and the one id namespace shared with deposits
//! and withdrawals.
//!
//! Malformed ids in a path are checked on the router in process, as in `endpoints`.

use crate::helpers::router::router;
use crate::helpers::{
    IDEMPOTENCY_KEY, MAX_MONEY, Reply, TestApp, assert_problem, assert_problem_in,
    assert_timestamp, assert_uuid, field_names, malformed_ids, operation_body, spawn_app,
    status_and_body, transfer_body,
};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use uuid::Uuid;

const TRANSFERS: &str = "/api/v1/transfers";

/// The fields of a transfer record, sorted; a rejected one has `reason` too.
pub(crate) const RECORD_FIELDS: [&str; 10] = [
    "amount",
    "createdAt",
    "fromAvailable",
    "fromBalance",
    "fromWalletId",
    "status",
    "toAvailable",
    "toBalance",
    "toWalletId",
    "transferId",
];

/// The fields of a transfer's leg in a wallet's history, sorted; a rejected one has `reason`.
const LEG_FIELDS: [&str; 10] = [
    "amount",
    "available",
    "balance",
    "counterpartyWalletId",
    "createdAt",
    "operationId",
    "operationType",
    "status",
    "transferId",
    "walletId",
];

/// `POST /api/v1/transfers`, read whole.
async fn post(app: &TestApp, body: &Value) -> Reply {
    Reply::of(app.transfer(body).await).await
}

/// A transfer named by a new `transferId`, which is returned with the answer.
async fn transfer(app: &TestApp, from: Uuid, to: Uuid, amount: u64) -> (Uuid, Reply) {
    let id = Uuid::new_v4();
    (
        id,
        post(app, &transfer_body(from, to, amount, Some(id))).await,
    )
}

/// `GET /api/v1/transfers/{id}`, read whole.
async fn get_transfer(app: &TestApp, id: impl std::fmt::Display) -> Reply {
    Reply::of(app.get(&format!("{TRANSFERS}/{id}")).await).await
}

/// The wallet was never created.
async fn assert_no_wallet(app: &TestApp, wallet: Uuid) {
    let response = app.get(&format!("/api/v1/wallets/{wallet}")).await;
    assert_problem(response, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
}

/// No transfer is stored under `id`.
async fn assert_no_transfer(app: &TestApp, id: Uuid) {
    let answer = get_transfer(app, id).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "TRANSFER_NOT_FOUND").await;
}

/// The balances and history lengths of `wallets`, to compare before and after a refusal.
async fn snapshot(app: &TestApp, wallets: &[Uuid]) -> Vec<(u64, usize)> {
    let mut state = Vec::new();
    for &wallet in wallets {
        state.push((app.balance(wallet).await, app.history(wallet).await.len()));
    }
    state
}

// ---------------------------------------------------------------- applied

#[tokio::test]
async fn transfer_within_the_balance_returns_the_record_with_both_balances_after() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(5).await);

    let (id, answer) = transfer(&app, from, to, 30).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.replayed(), None, "the first answer is not a replay");
    let body = answer.json();
    assert_eq!(field_names(&body), RECORD_FIELDS);
    assert_eq!(body["transferId"], id.to_string());
    assert_eq!(body["fromWalletId"], from.to_string());
    assert_eq!(body["toWalletId"], to.to_string());
    assert_eq!(body["amount"], 30);
    assert_eq!(body["status"], "APPLIED");
    assert_eq!(body["fromBalance"], 70);
    assert_eq!(body["toBalance"], 35);
    assert_timestamp(&body["createdAt"]);
    assert_eq!(app.balance(from).await, 70);
    assert_eq!(app.balance(to).await, 35);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_of_the_whole_balance_empties_the_source() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);

    let (_, answer) = transfer(&app, from, to, 100).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["fromBalance"], 0);
    assert_eq!(answer.json()["toBalance"], 100);
    assert_eq!(app.balance(from).await, 0);
    assert_eq!(app.balance(to).await, 100);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_that_fills_the_destination_to_the_limit_is_applied() {
    let app = spawn_app().await;
    let (from, to) = (
        app.funded_wallet(10).await,
        app.funded_wallet(MAX_MONEY - 5).await,
    );

    let (_, answer) = transfer(&app, from, to, 5).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["toBalance"], MAX_MONEY);
    assert_eq!(app.balance(to).await, MAX_MONEY);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_without_an_id_is_named_by_the_service() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);

    let answer = post(&app, &transfer_body(from, to, 4, None)).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let id = assert_uuid(&answer.json()["transferId"]);
    let read = get_transfer(&app, id).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.json(), answer.json());
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- missing wallets

#[tokio::test]
async fn transfer_from_an_unknown_wallet_is_404_naming_it_and_stores_nothing() {
    let app = spawn_app().await;
    let (from, to) = (Uuid::new_v4(), app.funded_wallet(10).await);

    let (id, answer) = transfer(&app, from, to, 1).await;

    let problem = assert_problem(&answer, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    assert_eq!(problem["walletId"], from.to_string(), "{problem}");
    assert_no_wallet(&app, from).await;
    assert_no_transfer(&app, id).await;
    assert_eq!(snapshot(&app, &[to]).await, [(10, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_to_an_unknown_wallet_is_404_naming_it_and_does_not_create_it() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, Uuid::new_v4());

    let (id, answer) = transfer(&app, from, to, 1).await;

    let problem = assert_problem(&answer, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    assert_eq!(problem["walletId"], to.to_string(), "{problem}");
    assert_no_wallet(&app, to).await;
    assert_no_transfer(&app, id).await;
    assert_eq!(snapshot(&app, &[from]).await, [(10, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_between_two_unknown_wallets_names_the_source_first() {
    let app = spawn_app().await;
    let (from, to) = (Uuid::new_v4(), Uuid::new_v4());

    let (_, answer) = transfer(&app, from, to, 1).await;

    let problem = assert_problem(&answer, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
    assert_eq!(problem["walletId"], from.to_string(), "{problem}");
    assert_no_wallet(&app, from).await;
    assert_no_wallet(&app, to).await;
}

#[tokio::test]
async fn transfer_refused_for_a_missing_wallet_succeeds_with_the_same_id_once_it_exists() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, Uuid::new_v4());
    let body = transfer_body(from, to, 4, Some(Uuid::new_v4()));
    let refused = post(&app, &body).await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;

    let created = app.create_wallet(Some(json!({ "walletId": to }))).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let retry = post(&app, &body).await;

    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(retry.replayed(), None, "decided afresh, not replayed");
    assert_eq!(retry.json()["toBalance"], 4);
    assert_eq!(app.balance(from).await, 6);
    assert_eq!(app.balance(to).await, 4);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_refused_for_a_missing_source_succeeds_with_the_same_id_once_it_is_funded() {
    let app = spawn_app().await;
    let (from, to) = (Uuid::new_v4(), app.funded_wallet(0).await);
    let body = transfer_body(from, to, 4, Some(Uuid::new_v4()));
    let refused = post(&app, &body).await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;

    // A deposit creates the wallet.
    assert_eq!(app.deposit(from, 10).await.status(), StatusCode::OK);
    let retry = post(&app, &body).await;

    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(app.balance(from).await, 6);
    assert_eq!(app.balance(to).await, 4);
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- malformed requests

#[tokio::test]
async fn transfer_to_the_same_wallet_is_400_same_wallet_and_stores_nothing() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let upper = wallet.hyphenated().to_string().to_uppercase();
    let unknown = Uuid::new_v4();
    let cases = [
        (
            "same id",
            json!({"fromWalletId": wallet, "toWalletId": wallet, "amount": 10}),
        ),
        (
            "same id in upper case",
            json!({"fromWalletId": wallet, "toWalletId": upper, "amount": 10}),
        ),
        (
            "same unknown wallet",
            json!({"fromWalletId": unknown, "toWalletId": unknown, "amount": 10}),
        ),
    ];

    for (case, mut body) in cases {
        let id = Uuid::new_v4();
        body["transferId"] = json!(id);
        let answer = post(&app, &body).await;
        assert_problem_in(case, &answer, StatusCode::BAD_REQUEST, "SAME_WALLET").await;
        assert_no_transfer(&app, id).await;
    }

    assert_eq!(snapshot(&app, &[wallet]).await, [(100, 1)]);
    assert_no_wallet(&app, unknown).await;
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn invalid_transfer_amounts_are_400_invalid_amount_and_change_nothing() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let amounts = [
        json!(0),
        json!(-1),
        json!(MAX_MONEY + 1),
        json!(1.5),
        json!(10.0),
        json!("10"),
        json!(true),
        json!(null),
    ];
    for amount in &amounts {
        let body = json!({"fromWalletId": from, "toWalletId": to, "amount": amount});
        let answer = post(&app, &body).await;
        let case = format!("amount {amount}");
        assert_problem_in(&case, &answer, StatusCode::BAD_REQUEST, "INVALID_AMOUNT").await;
    }
    // Numbers past every integer type and a double's range, which `json!` cannot build.
    for amount in ["18446744073709551616", "-9223372036854775809", "1e400"] {
        let body =
            format!(r#"{{"fromWalletId": "{from}", "toWalletId": "{to}", "amount": {amount}}}"#);
        let response = app.post_raw(TRANSFERS, body).await;
        assert_problem_in(amount, response, StatusCode::BAD_REQUEST, "INVALID_AMOUNT").await;
    }

    assert_eq!(snapshot(&app, &[from, to]).await, [(100, 1), (0, 0)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn malformed_transfer_requests_are_400_invalid_request_and_change_nothing() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (f, t, id) = (from.to_string(), to.to_string(), Uuid::new_v4());
    let mut cases: Vec<(String, Value)> = vec![
        (
            "missing fromWalletId".into(),
            json!({"toWalletId": t, "amount": 1}),
        ),
        (
            "missing toWalletId".into(),
            json!({"fromWalletId": f, "amount": 1}),
        ),
        (
            "missing amount".into(),
            json!({"fromWalletId": f, "toWalletId": t}),
        ),
        (
            "unknown field".into(),
            json!({"fromWalletId": f, "toWalletId": t, "amount": 1, "note": "rent"}),
        ),
        (
            "operationId instead of transferId".into(),
            json!({"fromWalletId": f, "toWalletId": t, "amount": 1, "operationId": id}),
        ),
        (
            "operationType of a batch item".into(),
            json!({"fromWalletId": f, "toWalletId": t, "amount": 1, "operationType": "TRANSFER"}),
        ),
        (
            "fromWalletId is a number".into(),
            json!({"fromWalletId": 5, "toWalletId": t, "amount": 1}),
        ),
        (
            "toWalletId is null".into(),
            json!({"fromWalletId": f, "toWalletId": null, "amount": 1}),
        ),
        (
            "transferId is a number".into(),
            json!({"fromWalletId": f, "toWalletId": t, "amount": 1, "transferId": 7}),
        ),
        (
            "transferId is not a UUID".into(),
            json!({"fromWalletId": f, "toWalletId": t, "amount": 1, "transferId": "x"}),
        ),
        (
            "JSON array".into(),
            json!([{"fromWalletId": f, "toWalletId": t, "amount": 1}]),
        ),
        ("JSON string".into(), json!("transfer")),
        ("JSON null".into(), json!(null)),
    ];
    // Only the hyphenated spelling of a UUID is an id.
    let spellings: [fn(Uuid) -> String; 3] = [
        |id: Uuid| format!("{{{id}}}"),
        |id: Uuid| format!("urn:uuid:{id}"),
        |id: Uuid| id.simple().to_string(),
    ];
    for spelling in spellings {
        for field in ["fromWalletId", "toWalletId", "transferId"] {
            let mut body =
                json!({"fromWalletId": f, "toWalletId": t, "amount": 1, "transferId": id});
            let named = Uuid::try_parse(body[field].as_str().unwrap()).unwrap();
            body[field] = json!(spelling(named));
            cases.push((format!("{field} spelled {}", body[field]), body));
        }
    }

    for (case, body) in &cases {
        let answer = post(&app, body).await;
        assert_problem_in(case, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
    let truncated = app.post_raw(TRANSFERS, r#"{"fromWalletId": "#).await;
    assert_problem(truncated, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;

    assert_no_transfer(&app, id).await;
    assert_eq!(snapshot(&app, &[from, to]).await, [(100, 1), (0, 0)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_id_and_idempotency_key_together_are_400() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let id = Uuid::new_v4();

    let answer = app
        .post_with_key(
            TRANSFERS,
            HeaderValue::from_static("both"),
            &transfer_body(from, to, 10, Some(id)),
        )
        .await;

    assert_problem(&answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_no_transfer(&app, id).await;
    assert_eq!(snapshot(&app, &[from, to]).await, [(100, 1), (0, 0)]);
}

#[tokio::test]
async fn invalid_idempotency_keys_on_a_transfer_are_400() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 10, None);
    let keys = [
        ("empty", HeaderValue::from_static("")),
        (
            "256 characters",
            HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        ),
        ("tab", HeaderValue::from_str("a\tb").unwrap()),
    ];

    for (case, key) in keys {
        let answer = app.post_with_key(TRANSFERS, key, &body).await;
        assert_problem_in(case, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }

    assert_eq!(snapshot(&app, &[from, to]).await, [(100, 1), (0, 0)]);
}

// ---------------------------------------------------------------- stored rejections

#[tokio::test]
async fn transfer_more_than_the_balance_is_rejected_and_stored() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);

    let (id, answer) = transfer(&app, from, to, 11).await;

    let problem = assert_problem(&answer, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(answer.replayed(), None);
    assert_eq!(problem["transferId"], id.to_string(), "{problem}");
    assert_eq!(problem["walletId"], from.to_string(), "{problem}");
    assert_eq!(problem["balance"], 10, "{problem}");
    let stored = get_transfer(&app, id).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text());
    assert_eq!(stored.json()["status"], "REJECTED");
    assert_eq!(app.balance(from).await, 10);
    assert_eq!(app.balance(to).await, 0);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn rejected_transfer_is_replayed_even_after_the_source_is_funded() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 50, Some(Uuid::new_v4()));
    let first = post(&app, &body).await;
    assert_problem(&first, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(app.deposit(from, 100).await.status(), StatusCode::OK);

    let retry = post(&app, &body).await;

    assert_problem(&retry, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.text(), first.text(), "byte-identical body");
    assert_eq!(app.balance(from).await, 110);
    assert_eq!(app.balance(to).await, 0);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn rejected_transfer_under_an_idempotency_key_is_replayed_after_the_source_is_funded() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 50, None);
    let key = HeaderValue::from_static("rent-march");
    let first = app.post_with_key(TRANSFERS, key.clone(), &body).await;
    let problem = assert_problem(&first, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;
    assert_uuid(&problem["transferId"]);
    assert_eq!(app.deposit(from, 100).await.status(), StatusCode::OK);

    let retry = app.post_with_key(TRANSFERS, key, &body).await;

    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert_eq!(retry.text(), first.text(), "byte-identical body");
    assert_eq!(app.balance(from).await, 110);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_past_the_destination_limit_is_rejected_naming_the_destination_and_stored() {
    let app = spawn_app().await;
    let full = MAX_MONEY - 5;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(full).await);
    let id = Uuid::new_v4();
    let body = transfer_body(from, to, 6, Some(id));

    let first = post(&app, &body).await;

    let problem = assert_problem(&first, StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED").await;
    assert_eq!(problem["transferId"], id.to_string(), "{problem}");
    assert_eq!(problem["walletId"], to.to_string(), "{problem}");
    assert_eq!(problem["balance"], full, "{problem}");
    assert_eq!(snapshot(&app, &[from, to]).await, [(10, 2), (full, 1)]);
    // Room enough now, but the rejection is stored.
    assert_eq!(app.withdraw(to, 10).await.status(), StatusCode::OK);
    let retry = post(&app, &body).await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.text(), first.text(), "byte-identical body");
    let stored = get_transfer(&app, id).await.json();
    assert_eq!(stored["status"], "REJECTED", "{stored}");
    assert_eq!(stored["reason"], "BALANCE_LIMIT_EXCEEDED", "{stored}");
    assert_eq!(stored["fromBalance"], 10, "{stored}");
    assert_eq!(stored["toBalance"], full, "{stored}");
    assert_eq!(app.balance(from).await, 10);
    assert_eq!(app.balance(to).await, full - 10);
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- replays and reuse

#[tokio::test]
async fn repeated_transfer_id_replays_the_same_answer_and_moves_money_once() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 25, Some(Uuid::new_v4()));

    let first = post(&app, &body).await;
    let second = post(&app, &body).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.replayed(), None);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.replayed(), Some("true"));
    assert_eq!(second.text(), first.text(), "byte-identical body");
    assert_eq!(snapshot(&app, &[from, to]).await, [(75, 2), (25, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn replayed_transfer_answers_from_the_stored_record_not_the_current_balances() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 25, Some(Uuid::new_v4()));
    let first = post(&app, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(app.deposit(to, 1).await.status(), StatusCode::OK);
    assert_eq!(app.withdraw(from, 1).await.status(), StatusCode::OK);

    let replay = post(&app, &body).await;

    assert_eq!(replay.replayed(), Some("true"));
    assert_eq!(replay.json()["fromBalance"], 75);
    assert_eq!(replay.json()["toBalance"], 25);
    assert_eq!(app.balance(from).await, 74);
    assert_eq!(app.balance(to).await, 26);
}

#[tokio::test]
async fn repeated_idempotency_key_replays_the_transfer_and_moves_money_once() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 25, None);
    let key = HeaderValue::from_static("invoice-17");

    let first = app.post_with_key(TRANSFERS, key.clone(), &body).await;
    let second = app.post_with_key(TRANSFERS, key, &body).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.replayed(), None);
    assert_eq!(second.replayed(), Some("true"));
    assert_eq!(second.text(), first.text(), "byte-identical body");
    let id = assert_uuid(&first.json()["transferId"]);
    let read = get_transfer(&app, id).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.json(), first.json());
    assert_eq!(snapshot(&app, &[from, to]).await, [(75, 2), (25, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn transfer_id_reused_with_a_different_payload_is_422() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(100).await);
    let other = app.funded_wallet(100).await;
    let id = Uuid::new_v4();
    let first = post(&app, &transfer_body(from, to, 10, Some(id))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    for (case, body) in [
        ("amount", transfer_body(from, to, 11, Some(id))),
        ("source", transfer_body(other, to, 10, Some(id))),
        ("destination", transfer_body(from, other, 10, Some(id))),
        ("direction", transfer_body(to, from, 10, Some(id))),
    ] {
        let reuse = post(&app, &body).await;
        assert_problem_in(
            case,
            &reuse,
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
        )
        .await;
    }

    let state = snapshot(&app, &[from, to, other]).await;
    assert_eq!(state, [(90, 2), (110, 2), (100, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn rejected_transfer_id_reused_with_a_different_payload_is_422() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);
    let id = Uuid::new_v4();
    let first = post(&app, &transfer_body(from, to, 50, Some(id))).await;
    assert_problem(&first, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;

    let reuse = post(&app, &transfer_body(from, to, 5, Some(id))).await;

    assert_problem(
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(snapshot(&app, &[from, to]).await, [(10, 2), (0, 0)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn idempotency_key_reused_for_another_transfer_is_422() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let key = HeaderValue::from_static("payout-3");
    let first = app
        .post_with_key(TRANSFERS, key.clone(), &transfer_body(from, to, 10, None))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let reuse = app
        .post_with_key(TRANSFERS, key, &transfer_body(from, to, 20, None))
        .await;

    assert_problem(
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(snapshot(&app, &[from, to]).await, [(90, 2), (10, 1)]);
}

// ---------------------------------------------------------------- one id namespace

#[tokio::test]
async fn the_id_of_a_deposit_or_withdrawal_cannot_name_a_transfer() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(0).await, app.funded_wallet(0).await);
    let (deposit, withdrawal, rejected) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let posts = [
        (
            operation_body(from, "DEPOSIT", 100, Some(deposit)),
            StatusCode::OK,
        ),
        (
            operation_body(from, "WITHDRAW", 10, Some(withdrawal)),
            StatusCode::OK,
        ),
        (
            operation_body(from, "WITHDRAW", 500, Some(rejected)),
            StatusCode::CONFLICT,
        ),
    ];
    for (body, status) in &posts {
        assert_eq!(app.operation(body).await.status(), *status, "{body}");
    }

    for (case, id) in [
        ("deposit", deposit),
        ("withdrawal", withdrawal),
        ("rejected", rejected),
    ] {
        let reuse = post(&app, &transfer_body(from, to, 10, Some(id))).await;
        assert_problem_in(
            case,
            &reuse,
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
        )
        .await;
        assert_no_transfer(&app, id).await;
    }

    assert_eq!(snapshot(&app, &[from, to]).await, [(90, 3), (0, 0)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn the_id_of_a_transfer_cannot_name_a_deposit_or_withdrawal() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (applied, _) = transfer(&app, from, to, 10).await;
    let (rejected, answer) = transfer(&app, from, to, 1000).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());

    for (case, body) in [
        (
            "deposit to the source",
            operation_body(from, "DEPOSIT", 10, Some(applied)),
        ),
        (
            "withdrawal from the source",
            operation_body(from, "WITHDRAW", 10, Some(applied)),
        ),
        (
            "deposit to the destination",
            operation_body(to, "DEPOSIT", 10, Some(applied)),
        ),
        (
            "deposit to a new wallet",
            operation_body(Uuid::new_v4(), "DEPOSIT", 10, Some(applied)),
        ),
        (
            "deposit under a rejected transfer's id",
            operation_body(from, "DEPOSIT", 10, Some(rejected)),
        ),
    ] {
        let reuse = app.operation(&body).await;
        assert_problem_in(
            case,
            reuse,
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
        )
        .await;
    }

    assert_eq!(snapshot(&app, &[from, to]).await, [(90, 3), (10, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn the_id_of_a_transfers_incoming_entry_cannot_name_a_new_operation() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (_, answer) = transfer(&app, from, to, 10).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let incoming = assert_uuid(&app.history(to).await[0]["operationId"]);

    let deposit = app
        .operation(&operation_body(to, "DEPOSIT", 10, Some(incoming)))
        .await;
    assert_problem_in(
        "deposit",
        deposit,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    let reuse = post(&app, &transfer_body(from, to, 10, Some(incoming))).await;
    assert_problem_in(
        "transfer",
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;

    assert_eq!(snapshot(&app, &[from, to]).await, [(90, 2), (10, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn one_idempotency_key_cannot_name_both_an_operation_and_a_transfer() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let deposit = operation_body(from, "DEPOSIT", 10, None);
    let transfer = transfer_body(from, to, 10, None);

    let first = app
        .post_with_key("/api/v1/wallet", HeaderValue::from_static("k-op"), &deposit)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let reuse = app
        .post_with_key(TRANSFERS, HeaderValue::from_static("k-op"), &transfer)
        .await;
    assert_problem_in(
        "operation, then transfer",
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;

    let first = app
        .post_with_key(TRANSFERS, HeaderValue::from_static("k-tr"), &transfer)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let reuse = app
        .post_with_key("/api/v1/wallet", HeaderValue::from_static("k-tr"), &deposit)
        .await;
    assert_problem_in(
        "transfer, then operation",
        &reuse,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;

    assert_eq!(snapshot(&app, &[from, to]).await, [(100, 3), (10, 1)]);
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- GET /api/v1/transfers/{id}

#[tokio::test]
async fn get_transfer_returns_the_applied_record_as_posted() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (id, posted) = transfer(&app, from, to, 40).await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text());
    // Later movements do not change the record.
    assert_eq!(app.deposit(to, 1).await.status(), StatusCode::OK);

    let read = get_transfer(&app, id).await;

    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.json(), posted.json(), "one transfer, one record");
}

#[tokio::test]
async fn get_rejected_transfer_reports_rejected_with_its_reason_and_unchanged_balances() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(3).await);
    let (id, answer) = transfer(&app, from, to, 11).await;
    assert_problem(&answer, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;

    let (status, body) = status_and_body(&get_transfer(&app, id).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let mut fields = RECORD_FIELDS.to_vec();
    fields.push("reason");
    fields.sort_unstable();
    assert_eq!(field_names(&body), fields);
    assert_eq!(body["transferId"], id.to_string());
    assert_eq!(body["fromWalletId"], from.to_string());
    assert_eq!(body["toWalletId"], to.to_string());
    assert_eq!(body["amount"], 11);
    assert_eq!(body["status"], "REJECTED");
    assert_eq!(body["reason"], "INSUFFICIENT_FUNDS");
    assert_eq!(body["fromBalance"], 10);
    assert_eq!(body["toBalance"], 3);
    assert_timestamp(&body["createdAt"]);
}

#[tokio::test]
async fn get_unknown_transfer_is_404_transfer_not_found() {
    let app = spawn_app().await;

    assert_no_transfer(&app, Uuid::new_v4()).await;
}

#[tokio::test]
async fn get_transfer_by_the_id_of_a_deposit_or_an_incoming_entry_is_404() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(0).await, app.funded_wallet(0).await);
    let (status, deposit) = status_and_body(app.deposit(from, 50).await).await;
    assert_eq!(status, StatusCode::OK, "{deposit}");
    let (_, answer) = transfer(&app, from, to, 10).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let incoming = assert_uuid(&app.history(to).await[0]["operationId"]);

    assert_no_transfer(&app, assert_uuid(&deposit["operationId"])).await;
    assert_no_transfer(&app, incoming).await;
}

#[tokio::test]
async fn get_transfer_with_a_malformed_id_is_400() {
    let router = router();
    let id = Uuid::new_v4();

    for spelling in malformed_ids(id) {
        let path = format!("{TRANSFERS}/{spelling}");
        let answer = router.get(&path).await;
        assert_problem_in(&path, &answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
}

// ---------------------------------------------------------------- history

#[tokio::test]
async fn applied_transfer_is_one_out_item_on_the_source_and_one_in_item_on_the_destination() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(5).await);
    let (id, answer) = transfer(&app, from, to, 30).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let (source, destination) = (app.history(from).await, app.history(to).await);

    assert_eq!((source.len(), destination.len()), (2, 2));
    let out = &source[0];
    assert_eq!(field_names(out), LEG_FIELDS);
    assert_eq!(out["operationType"], "TRANSFER_OUT", "{out}");
    assert_eq!(out["operationId"], id.to_string(), "{out}");
    assert_eq!(out["transferId"], id.to_string(), "{out}");
    assert_eq!(out["walletId"], from.to_string(), "{out}");
    assert_eq!(out["counterpartyWalletId"], to.to_string(), "{out}");
    assert_eq!(out["amount"], 30, "{out}");
    assert_eq!(out["status"], "APPLIED", "{out}");
    assert_eq!(out["balance"], 70, "{out}");
    assert_timestamp(&out["createdAt"]);
    let into = &destination[0];
    assert_eq!(field_names(into), LEG_FIELDS);
    assert_eq!(into["operationType"], "TRANSFER_IN", "{into}");
    let incoming = assert_uuid(&into["operationId"]);
    assert_ne!(incoming, id, "the incoming entry has an id of its own");
    assert_eq!(into["transferId"], id.to_string(), "{into}");
    assert_eq!(into["walletId"], to.to_string(), "{into}");
    assert_eq!(into["counterpartyWalletId"], from.to_string(), "{into}");
    assert_eq!(into["amount"], 30, "{into}");
    assert_eq!(into["status"], "APPLIED", "{into}");
    assert_eq!(into["balance"], 35, "{into}");
    assert_timestamp(&into["createdAt"]);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn each_leg_of_a_transfer_is_read_by_its_operation_id_on_its_own_wallet() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (id, answer) = transfer(&app, from, to, 30).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let into = app.history(to).await[0].clone();
    let incoming = assert_uuid(&into["operationId"]);

    let (status, out) = status_and_body(
        app.get(&format!("/api/v1/wallets/{from}/operations/{id}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out, app.history(from).await[0]);
    let (status, read) = status_and_body(
        app.get(&format!("/api/v1/wallets/{to}/operations/{incoming}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, into);
    // The transfer's id names its out leg, which is on the source only.
    let response = app
        .get(&format!("/api/v1/wallets/{to}/operations/{id}"))
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "OPERATION_NOT_FOUND").await;
}

#[tokio::test]
async fn rejected_transfer_leaves_only_a_rejected_out_item_on_the_source() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);

    let (id, answer) = transfer(&app, from, to, 11).await;
    assert_problem(&answer, StatusCode::CONFLICT, "INSUFFICIENT_FUNDS").await;

    let source = app.history(from).await;
    assert_eq!(source.len(), 2, "{source:?}");
    let out = &source[0];
    let mut fields = LEG_FIELDS.to_vec();
    fields.push("reason");
    fields.sort_unstable();
    assert_eq!(field_names(out), fields);
    assert_eq!(out["operationType"], "TRANSFER_OUT", "{out}");
    assert_eq!(out["operationId"], id.to_string(), "{out}");
    assert_eq!(out["transferId"], id.to_string(), "{out}");
    assert_eq!(out["counterpartyWalletId"], to.to_string(), "{out}");
    assert_eq!(out["status"], "REJECTED", "{out}");
    assert_eq!(out["reason"], "INSUFFICIENT_FUNDS", "{out}");
    assert_eq!(out["amount"], 11, "{out}");
    assert_eq!(out["balance"], 10, "{out}");
    assert_eq!(
        app.history(to).await,
        Vec::<Value>::new(),
        "nothing on the destination"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn deposit_and_withdrawal_items_carry_no_transfer_fields() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    assert_eq!(app.withdraw(from, 10).await.status(), StatusCode::OK);
    let (_, answer) = transfer(&app, from, to, 10).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let history = app.history(from).await;

    let kinds: Vec<_> = history
        .iter()
        .map(|item| item["operationType"].clone())
        .collect();
    assert_eq!(kinds, ["TRANSFER_OUT", "WITHDRAW", "DEPOSIT"]);
    for item in &history[1..] {
        let fields = field_names(item);
        assert!(!fields.contains(&"transferId"), "{item}");
        assert!(!fields.contains(&"counterpartyWalletId"), "{item}");
    }
}

#[tokio::test]
async fn a_wallets_history_with_transfers_adds_up_to_its_balance() {
    let app = spawn_app().await;
    let (a, b) = (app.funded_wallet(100).await, app.funded_wallet(50).await);
    let moves = [
        (a, b, 30, StatusCode::OK),
        (b, a, 70, StatusCode::OK),
        (a, b, 500, StatusCode::CONFLICT),
        (b, a, 10, StatusCode::OK),
        (a, b, 1, StatusCode::OK),
    ];
    for (from, to, amount, status) in moves {
        let (_, answer) = transfer(&app, from, to, amount).await;
        assert_eq!(answer.status, status, "{}", answer.text());
    }

    assert_eq!(app.assert_history_adds_up(a).await, 100 - 30 + 70 + 10 - 1);
    // 50 + 30 - 70 - 10 + 1
    assert_eq!(app.assert_history_adds_up(b).await, 1);
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- concurrent duplicates

/// Sends `copies` of `body` (under `key`, when given) at once and returns the answers.
async fn at_once(app: &TestApp, body: &Value, key: Option<&str>, copies: usize) -> Vec<Reply> {
    let tasks: tokio::task::JoinSet<Reply> = (0..copies)
        .map(|_| {
            let mut request = app.client.post(app.url(TRANSFERS)).json(body);
            if let Some(key) = key {
                request = request.header(IDEMPOTENCY_KEY, key);
            }
            async move { Reply::of(request.send().await.unwrap()).await }
        })
        .collect();
    tasks.join_all().await
}

/// Every answer is `status` with one body, and exactly one of them is not a replay.
fn assert_answered_once(answers: &[Reply], status: StatusCode) {
    let first = &answers[0];
    for answer in answers {
        assert_eq!(answer.status, status, "{}", answer.text());
        assert_eq!(
            answer.text(),
            first.text(),
            "every duplicate gets the same body"
        );
    }
    let originals = answers.iter().filter(|a| a.replayed().is_none()).count();
    assert_eq!(originals, 1, "exactly one answer is not a replay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_of_one_transfer_id_are_applied_once_with_one_answer() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 7, Some(Uuid::new_v4()));

    let answers = at_once(&app, &body, None, 50).await;

    assert_answered_once(&answers, StatusCode::OK);
    assert_eq!(answers[0].json()["fromBalance"], 93);
    assert_eq!(snapshot(&app, &[from, to]).await, [(93, 2), (7, 1)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_of_a_rejected_transfer_are_rejected_once_with_one_answer() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(5).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 7, Some(Uuid::new_v4()));

    let answers = at_once(&app, &body, None, 30).await;

    assert_answered_once(&answers, StatusCode::CONFLICT);
    assert_eq!(answers[0].json()["code"], "INSUFFICIENT_FUNDS");
    assert_eq!(snapshot(&app, &[from, to]).await, [(5, 2), (0, 0)]);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_of_one_idempotency_key_move_money_once() {
    let app = spawn_app().await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let body = transfer_body(from, to, 9, None);

    let answers = at_once(&app, &body, Some("one-key"), 30).await;

    assert_answered_once(&answers, StatusCode::OK);
    assert_eq!(snapshot(&app, &[from, to]).await, [(91, 2), (9, 1)]);
    app.assert_ledger_consistent().await;
}
