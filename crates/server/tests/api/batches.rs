//! Black-box tests of batches (`POST /api/v1/batches`): deposits, withdrawals, transfers,
//! confirmations and voids in one request, decided in order, each item answered exactly as its
//! own endpoint would have answered it and named, as there, by its `operationId` or
//! `transferId`; all or nothing with `"atomic": true`; within a body limit of their own; exact
//! under concurrent batches on one wallet and across a `kill -9` of the service.

use crate::helpers::bank::{self, Move, Settled};
use crate::helpers::raw::exchange;
use crate::helpers::router::router;
use crate::helpers::{
    BATCHES, MAX_MONEY, Reply, ServerProcess, TestApp, assert_problem_in, assert_timestamp,
    eventually, field_names, free_port, operation_body, pending, spawn_app, spawn_app_with,
    transfer_body,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

/// A request deadline far beyond any load here: the concurrency tests test exactness, and on
/// a loaded machine a queue of batches may wait longer than the default deadline.
const PATIENT: [&str; 2] = ["--request-timeout-ms", "60000"];

// ---------------------------------------------------------------- items and results

/// A deposit item named `id`: the body of `POST /api/v1/wallet`.
fn deposit(wallet: Uuid, amount: u64, id: Uuid) -> Value {
    operation_body(wallet, "DEPOSIT", amount, Some(id))
}

/// A withdrawal item named `id`: the body of `POST /api/v1/wallet`.
fn withdrawal(wallet: Uuid, amount: u64, id: Uuid) -> Value {
    operation_body(wallet, "WITHDRAW", amount, Some(id))
}

/// A transfer item named `id`: the body of `POST /api/v1/transfers` with its type.
fn transfer(from: Uuid, to: Uuid, amount: u64, id: Uuid) -> Value {
    let mut item = transfer_body(from, to, amount, Some(id));
    item["operationType"] = json!("TRANSFER");
    item
}

/// A confirmation of `hold`, of `amount` or of all of it.
fn confirm(hold: Uuid, amount: Option<u64>) -> Value {
    let mut item = json!({"operationType": "CONFIRM", "holdId": hold});
    if let Some(amount) = amount {
        item["amount"] = json!(amount);
    }
    item
}

/// A void of `hold`.
fn void(hold: Uuid) -> Value {
    json!({"operationType": "VOID", "holdId": hold})
}

/// A batch of `items`, each decided on its own.
fn batch(items: &[Value]) -> Value {
    json!({ "items": items })
}

/// A batch of `items` that applies completely or not at all.
fn atomic(items: &[Value]) -> Value {
    json!({"atomic": true, "items": items})
}

/// The results of a decided batch of `items` items: checks that the answer is a `200` with
/// one result per item, each a status, a body and a replayed flag, and returns them.
fn results(answer: &Reply, items: usize) -> Vec<Value> {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(field_names(&body), ["results"], "{body}");
    let results = body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results is an array in {body}"))
        .clone();
    assert_eq!(results.len(), items, "one result per item: {body}");
    for result in &results {
        assert_eq!(
            field_names(result),
            ["body", "replayed", "status"],
            "{result}"
        );
        assert!(result["replayed"].is_boolean(), "{result}");
        assert!(result["body"].is_object(), "{result}");
    }
    results
}

/// Checks that `result` is a first answer `200` and returns its record.
fn assert_item_ok(case: &str, result: &Value) -> Value {
    assert_eq!(result["status"], 200, "{case}: {result}");
    assert_eq!(
        result["replayed"], false,
        "{case}: a first answer: {result}"
    );
    result["body"].clone()
}

/// Checks that `result` is an item's RFC 9457 problem with `status` and `code`, and returns
/// the problem.
fn assert_item_problem(case: &str, result: &Value, status: StatusCode, code: &str) -> Value {
    let problem = &result["body"];
    assert_eq!(
        result["status"],
        status.as_u16(),
        "{case}: status of {result}"
    );
    assert_eq!(problem["code"], code, "{case}: code of {result}");
    assert_eq!(
        problem["status"],
        status.as_u16(),
        "{case}: status field of {result}"
    );
    for field in ["type", "title", "detail"] {
        assert!(
            problem[field].is_string(),
            "{case}: {field} is a string in {result}"
        );
    }
    problem.clone()
}

/// Checks that `result` is `409 LINKED_ITEM_FAILED`: another item of its atomic batch failed.
fn assert_linked(case: &str, result: &Value) {
    assert_item_problem(case, result, StatusCode::CONFLICT, "LINKED_ITEM_FAILED");
    assert_eq!(result["replayed"], false, "{case}: {result}");
}

/// `item` sent through its own endpoint instead of a batch, read whole.
async fn single(app: &TestApp, item: &Value) -> Reply {
    let hold = || -> Uuid {
        serde_json::from_value(item["holdId"].clone()).expect("a hold's id is a UUID")
    };
    match item["operationType"].as_str() {
        Some("DEPOSIT" | "WITHDRAW") => app.post("/api/v1/wallet", Some(item)).await,
        Some("TRANSFER") => {
            let mut body = item.clone();
            body.as_object_mut().unwrap().remove("operationType");
            app.post("/api/v1/transfers", Some(&body)).await
        }
        Some("CONFIRM") => {
            let body = item.get("amount").map(|amount| json!({ "amount": amount }));
            app.confirm_hold(hold(), body.as_ref()).await
        }
        Some("VOID") => app.void_hold(hold()).await,
        other => panic!("no single endpoint for operationType {other:?}"),
    }
}

/// The answer of a single endpoint as a batch's result would carry it.
fn as_result(answer: &Reply) -> Value {
    json!({
        "status": answer.status.as_u16(),
        "body": answer.json(),
        "replayed": answer.replayed() == Some("true"),
    })
}

/// `result` as it would read in another setup: each id of `renames` replaced by its
/// counterpart, and the timestamps (which differ) taken out after checking that they are
/// timestamps.
fn normalized(result: &Value, renames: &[(Uuid, Uuid)]) -> Value {
    let mut text = result.to_string();
    for (from, to) in renames {
        text = text.replace(&from.to_string(), &to.to_string());
    }
    let mut result: Value = serde_json::from_str(&text).unwrap();
    if let Some(body) = result["body"].as_object_mut() {
        for field in ["createdAt", "expiresAt", "resolvedAt"] {
            if let Some(time) = body.remove(field) {
                assert_timestamp(&time);
            }
        }
    }
    result
}

/// Each wallet's `(balance, held, available)` and number of history entries, to compare
/// before and after a batch that must change nothing.
async fn snapshot(app: &TestApp, wallets: &[Uuid]) -> Vec<((u64, u64, u64), usize)> {
    let mut state = Vec::new();
    for &wallet in wallets {
        state.push((app.funds(wallet).await, app.history(wallet).await.len()));
    }
    state
}

/// No wallet `wallet` exists.
async fn assert_no_wallet(case: &str, app: &TestApp, wallet: Uuid) {
    let answer = app.get(&format!("/api/v1/wallets/{wallet}")).await;
    assert_problem_in(case, answer, StatusCode::NOT_FOUND, "WALLET_NOT_FOUND").await;
}

/// No operation `id` is recorded on `wallet`.
async fn assert_no_operation(case: &str, app: &TestApp, wallet: Uuid, id: Uuid) {
    let answer = app
        .get(&format!("/api/v1/wallets/{wallet}/operations/{id}"))
        .await;
    assert_problem_in(case, answer, StatusCode::NOT_FOUND, "OPERATION_NOT_FOUND").await;
}

/// No transfer `id` is recorded.
async fn assert_no_transfer(case: &str, app: &TestApp, id: Uuid) {
    let answer = app.get(&format!("/api/v1/transfers/{id}")).await;
    assert_problem_in(case, answer, StatusCode::NOT_FOUND, "TRANSFER_NOT_FOUND").await;
}

/// The `operationType`, `status`, `amount`, `balance` and `available` of each entry of
/// `wallet`'s history, newest first: what two equivalent setups share.
async fn history_shape(app: &TestApp, wallet: Uuid) -> Vec<Value> {
    let fields = ["operationType", "status", "amount", "balance", "available"];
    app.history(wallet)
        .await
        .iter()
        .map(|entry| fields.iter().map(|field| entry[*field].clone()).collect())
        .collect()
}

// ---------------------------------------------------------------- as the single endpoints

/// The first batch of the equivalence test, on wallet `w` (100), `v` (0), a missing wallet
/// `m` and a new one `n`, named by `ids`: every outcome a write can have, in an order where
/// later items depend on earlier ones. Answered as [`EVERY_OUTCOME`] says.
fn every_outcome(w: Uuid, v: Uuid, m: Uuid, n: Uuid, ids: &[Uuid; 13]) -> Vec<Value> {
    let mut pending_deposit = deposit(w, 5, ids[11]);
    pending_deposit["pending"] = json!(true);
    let mut timeout_alone = withdrawal(w, 5, ids[12]);
    timeout_alone["timeoutSeconds"] = json!(60);
    vec![
        deposit(w, 50, ids[0]),
        withdrawal(w, 30, ids[1]),
        withdrawal(w, 500, ids[2]),
        transfer(w, v, 20, ids[3]),
        transfer(w, m, 5, ids[4]),
        withdrawal(m, 5, ids[5]),
        pending(withdrawal(w, 40, ids[6]), None),
        pending(transfer(w, v, 10, ids[7]), Some(3600)),
        deposit(w, 0, ids[8]),
        transfer(w, w, 5, ids[9]),
        deposit(n, 7, ids[10]),
        pending_deposit,
        timeout_alone,
        // The first item again: a replay.
        deposit(w, 50, ids[0]),
        // Its id for something else, and a withdrawal's id for a transfer.
        withdrawal(w, 50, ids[0]),
        transfer(w, v, 1, ids[1]),
    ]
}

/// Status, problem code ("" for a record) and replayed flag of each of [`every_outcome`].
const EVERY_OUTCOME: [(u16, &str, bool); 16] = [
    (200, "", false),
    (200, "", false),
    (409, "INSUFFICIENT_FUNDS", false),
    (200, "", false),
    (404, "WALLET_NOT_FOUND", false),
    (404, "WALLET_NOT_FOUND", false),
    (200, "", false),
    (200, "", false),
    (400, "INVALID_AMOUNT", false),
    (400, "SAME_WALLET", false),
    (200, "", false),
    (400, "INVALID_REQUEST", false),
    (400, "INVALID_REQUEST", false),
    (200, "", true),
    (422, "IDEMPOTENCY_KEY_REUSED", false),
    (422, "IDEMPOTENCY_KEY_REUSED", false),
];

/// The second batch of the equivalence test: decisions about the withdrawal's hold `held`
/// (40) and the transfer's hold `moving` (10) that the first placed, and about a hold that
/// does not exist. Answered as [`HOLD_DECISIONS`] says.
fn hold_decisions(held: Uuid, moving: Uuid, unknown: Uuid) -> Vec<Value> {
    vec![
        confirm(held, Some(25)),
        confirm(held, Some(25)),
        void(held),
        void(moving),
        confirm(unknown, None),
        confirm(moving, Some(0)),
        confirm(moving, Some(11)),
        void(moving),
    ]
}

/// Status, problem code and replayed flag of each of [`hold_decisions`].
const HOLD_DECISIONS: [(u16, &str, bool); 8] = [
    (200, "", false),
    (200, "", true),
    (409, "HOLD_NOT_PENDING", false),
    (200, "", false),
    (404, "HOLD_NOT_FOUND", false),
    (400, "INVALID_AMOUNT", false),
    (400, "INVALID_AMOUNT", false),
    (200, "", true),
];

/// Checks `results` against `expected` (status, problem code, replayed), naming `round`.
fn assert_outcomes(round: &str, results: &[Value], expected: &[(u16, &str, bool)]) {
    assert_eq!(results.len(), expected.len(), "{round}");
    for (index, (result, &(status, code, replayed))) in results.iter().zip(expected).enumerate() {
        let case = format!("{round}, item {index}");
        assert_eq!(result["status"], status, "{case}: {result}");
        assert_eq!(result["replayed"], replayed, "{case}: {result}");
        if code.is_empty() {
            assert!(result["body"]["code"].is_null(), "{case}: {result}");
        } else {
            let status = StatusCode::from_u16(status).unwrap();
            assert_item_problem(&case, result, status, code);
        }
    }
}

#[tokio::test]
async fn each_item_is_answered_exactly_as_its_own_endpoint_answers_it() {
    let app = spawn_app().await;
    // Two equivalent setups: `a` through the single endpoints, `b` through batches.
    let (wa, va) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (wb, vb) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (ma, na, mb, nb) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let ids_a: [Uuid; 13] = std::array::from_fn(|_| Uuid::new_v4());
    let ids_b: [Uuid; 13] = std::array::from_fn(|_| Uuid::new_v4());
    let unknown = Uuid::new_v4();
    let mut renames = vec![(wb, wa), (vb, va), (mb, ma), (nb, na)];
    renames.extend(ids_b.iter().copied().zip(ids_a));

    let rounds = [
        (
            "first round",
            every_outcome(wa, va, ma, na, &ids_a),
            every_outcome(wb, vb, mb, nb, &ids_b),
            &EVERY_OUTCOME[..],
        ),
        (
            "hold decisions",
            hold_decisions(ids_a[6], ids_a[7], unknown),
            hold_decisions(ids_b[6], ids_b[7], unknown),
            &HOLD_DECISIONS[..],
        ),
    ];
    for (round, items_a, items_b, expected) in rounds {
        let mut singles = Vec::new();
        for item in &items_a {
            singles.push(as_result(&single(&app, item).await));
        }
        let batched = results(&app.batch(&batch(&items_b)).await, items_b.len());

        assert_outcomes(round, &batched, expected);
        for (index, (alone, together)) in singles.iter().zip(&batched).enumerate() {
            assert_eq!(
                normalized(together, &renames),
                normalized(alone, &[]),
                "{round}, item {index}: batched vs alone"
            );
        }
    }

    // 100 + 50 - 30 - 20, less 25 of the hold of 40 confirmed; the other hold voided.
    for (w, v, m, n) in [(wa, va, ma, na), (wb, vb, mb, nb)] {
        assert_eq!(app.funds(w).await, (75, 0, 75));
        assert_eq!(app.funds(v).await, (20, 0, 20));
        assert_eq!(
            app.funds(n).await,
            (7, 0, 7),
            "a deposit creates its wallet"
        );
        assert_no_wallet("the missing wallet", &app, m).await;
    }
    assert_eq!(history_shape(&app, wb).await, history_shape(&app, wa).await);
    assert_eq!(history_shape(&app, vb).await, history_shape(&app, va).await);
    app.assert_ledger_consistent().await;
}

/// A wallet `w` of 100 and `v` of 0 with requests named by `ids` on them: a deposit, a
/// rejected withdrawal, a transfer, a pending withdrawal, and the partial confirmation of
/// that hold.
fn named_requests(w: Uuid, v: Uuid, ids: &[Uuid; 4]) -> Vec<Value> {
    vec![
        deposit(w, 10, ids[0]),
        withdrawal(w, 500, ids[1]),
        transfer(w, v, 5, ids[2]),
        pending(withdrawal(w, 20, ids[3]), None),
        confirm(ids[3], Some(5)),
    ]
}

#[tokio::test]
async fn a_batch_item_replays_what_a_single_request_decided_under_its_id() {
    let app = spawn_app().await;
    let (w, v) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let items = named_requests(w, v, &std::array::from_fn(|_| Uuid::new_v4()));
    let mut singles = Vec::new();
    for item in &items {
        singles.push(single(&app, item).await);
    }
    let statuses: Vec<_> = singles.iter().map(|answer| answer.status).collect();
    assert_eq!(
        statuses,
        [200, 409, 200, 200, 200].map(|s| StatusCode::from_u16(s).unwrap())
    );
    let before = snapshot(&app, &[w, v]).await;

    let batched = results(&app.batch(&batch(&items)).await, items.len());

    for (index, (result, alone)) in batched.iter().zip(&singles).enumerate() {
        assert_eq!(
            result["status"],
            alone.status.as_u16(),
            "item {index}: {result}"
        );
        assert_eq!(result["replayed"], true, "item {index}: {result}");
        assert_eq!(
            result["body"],
            alone.json(),
            "item {index}: the stored answer"
        );
    }
    assert_eq!(
        snapshot(&app, &[w, v]).await,
        before,
        "nothing applied twice"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_single_request_replays_what_a_batch_item_decided_under_its_id() {
    let app = spawn_app().await;
    let (w, v) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let items = named_requests(w, v, &std::array::from_fn(|_| Uuid::new_v4()));
    // The hold is confirmed by a later batch than the one that places it.
    let (placing, confirming) = items.split_at(4);
    let mut batched = results(&app.batch(&batch(placing)).await, placing.len());
    batched.extend(results(&app.batch(&batch(confirming)).await, 1));
    let statuses: Vec<_> = batched
        .iter()
        .map(|result| result["status"].clone())
        .collect();
    assert_eq!(statuses, [200, 409, 200, 200, 200]);
    let before = snapshot(&app, &[w, v]).await;

    for (index, (item, result)) in items.iter().zip(&batched).enumerate() {
        let alone = single(&app, item).await;
        assert_eq!(alone.status.as_u16(), result["status"], "item {index}");
        assert_eq!(
            alone.replayed(),
            Some("true"),
            "item {index}: {}",
            alone.text()
        );
        assert_eq!(
            alone.json(),
            result["body"],
            "item {index}: the stored answer"
        );
    }
    assert_eq!(
        snapshot(&app, &[w, v]).await,
        before,
        "nothing applied twice"
    );
    // 100 + 10 - 5 - 5: funding, deposit, rejection, transfer, hold and its confirmation.
    assert_eq!(before[0], ((100, 0, 100), 6));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn an_id_reused_for_another_request_is_that_items_422_and_the_other_items_are_decided() {
    let app = spawn_app().await;
    let (w, v) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let [taken, fresh, twice] = std::array::from_fn(|_| Uuid::new_v4());
    let first = single(&app, &deposit(w, 10, taken)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let items = [
        deposit(w, 11, taken),
        transfer(w, v, 5, taken),
        withdrawal(w, 5, fresh),
        deposit(w, 3, twice),
        withdrawal(w, 3, twice),
    ];
    let results = results(&app.batch(&batch(&items)).await, items.len());

    for index in [0, 1, 4] {
        let case = format!("item {index}");
        let code = "IDEMPOTENCY_KEY_REUSED";
        assert_item_problem(
            &case,
            &results[index],
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
        );
    }
    assert_eq!(assert_item_ok("withdrawal", &results[2])["balance"], 105);
    assert_eq!(assert_item_ok("deposit", &results[3])["balance"], 108);
    assert_eq!(app.funds(w).await, (108, 0, 108));
    assert_eq!(
        app.history(w).await.len(),
        4,
        "funding, deposit, withdrawal, deposit"
    );
    assert_eq!(app.funds(v).await, (0, 0, 0));
    assert_no_transfer("the transfer under a deposit's id", &app, taken).await;
    let stored = app
        .get(&format!("/api/v1/wallets/{w}/operations/{taken}"))
        .await;
    assert_eq!(
        Reply::of(stored).await.json(),
        first.json(),
        "still the first deposit"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn the_same_batch_sent_twice_is_replayed_item_by_item_and_applied_once() {
    let app = spawn_app().await;
    for all_or_nothing in [false, true] {
        let (w, v, n) = (
            app.funded_wallet(100).await,
            app.funded_wallet(0).await,
            Uuid::new_v4(),
        );
        let ids: [Uuid; 6] = std::array::from_fn(|_| Uuid::new_v4());
        let mut items = vec![
            deposit(n, 30, ids[0]),
            withdrawal(w, 40, ids[1]),
            transfer(w, v, 25, ids[2]),
            pending(withdrawal(w, 10, ids[3]), Some(3600)),
            transfer(n, w, 5, ids[4]),
        ];
        if !all_or_nothing {
            // A rejection is stored and replayed like a success.
            items.push(withdrawal(w, 500, ids[5]));
        }
        let body = if all_or_nothing {
            atomic(&items)
        } else {
            batch(&items)
        };
        let case = format!("atomic: {all_or_nothing}");

        let first = results(&app.batch(&body).await, items.len());
        let after_first = snapshot(&app, &[w, v, n]).await;
        let second = results(&app.batch(&body).await, items.len());

        for (index, (first, second)) in first.iter().zip(&second).enumerate() {
            assert_eq!(first["replayed"], false, "{case}, item {index}: {first}");
            assert_eq!(second["replayed"], true, "{case}, item {index}: {second}");
            assert_eq!(second["status"], first["status"], "{case}, item {index}");
            assert_eq!(second["body"], first["body"], "{case}, item {index}");
        }
        let statuses: Vec<_> = first
            .iter()
            .map(|result| result["status"].clone())
            .collect();
        let mut expected = vec![200; 5];
        if !all_or_nothing {
            expected.push(409);
        }
        assert_eq!(statuses, expected, "{case}");
        assert_eq!(snapshot(&app, &[w, v, n]).await, after_first, "{case}");
        // 100 - 40 - 25 + 5, 10 of it held; the new wallet 30 - 5.
        assert_eq!(after_first[0].0, (40, 10, 30), "{case}");
        assert_eq!(after_first[1].0, (25, 0, 25), "{case}");
        assert_eq!(after_first[2], ((25, 0, 25), 2), "{case}");
    }
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- in order, each on its own

#[tokio::test]
async fn items_are_decided_in_order_and_each_sees_what_the_items_before_it_did() {
    let app = spawn_app().await;
    let (wallet, other) = (Uuid::new_v4(), app.funded_wallet(0).await);
    let ids: [Uuid; 4] = std::array::from_fn(|_| Uuid::new_v4());
    let items = [
        deposit(wallet, 100, ids[0]),
        withdrawal(wallet, 80, ids[1]),
        withdrawal(wallet, 80, ids[2]),
        transfer(wallet, other, 20, ids[3]),
    ];

    let results = results(&app.batch(&batch(&items)).await, items.len());

    let created = assert_item_ok("deposit to a new wallet", &results[0]);
    assert_eq!(created["balance"], 100, "{created}");
    assert_eq!(assert_item_ok("withdrawal", &results[1])["balance"], 20);
    let refused = &results[2];
    let problem = assert_item_problem(
        "second withdrawal",
        refused,
        StatusCode::CONFLICT,
        "INSUFFICIENT_FUNDS",
    );
    assert_eq!(problem["operationId"], ids[2].to_string(), "{problem}");
    assert_eq!(problem["walletId"], wallet.to_string(), "{problem}");
    assert_eq!(problem["balance"], 20, "{problem}");
    assert_eq!(problem["available"], 20, "{problem}");
    let moved = assert_item_ok("transfer of what is left", &results[3]);
    assert_eq!(
        (&moved["fromBalance"], &moved["toBalance"]),
        (&json!(0), &json!(20))
    );
    assert_eq!(
        app.funds(wallet).await,
        (0, 0, 0),
        "the deposit created the wallet"
    );
    assert_eq!(app.funds(other).await, (20, 0, 20));

    // The rejection is stored: read back as rejected, and replayed to a single request.
    let stored = app
        .get(&format!("/api/v1/wallets/{wallet}/operations/{}", ids[2]))
        .await;
    let stored = Reply::of(stored).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text());
    assert_eq!(stored.json()["status"], "REJECTED", "{}", stored.text());
    assert_eq!(
        stored.json()["reason"],
        "INSUFFICIENT_FUNDS",
        "{}",
        stored.text()
    );
    assert_eq!(app.deposit(wallet, 500).await.status(), StatusCode::OK);
    let retried = single(&app, &items[2]).await;
    assert_eq!(retried.status, StatusCode::CONFLICT, "{}", retried.text());
    assert_eq!(retried.replayed(), Some("true"));
    assert_eq!(retried.json(), refused["body"], "the stored rejection");
    assert_eq!(app.history(wallet).await.len(), 5);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn malformed_items_get_their_own_400_and_the_other_items_are_decided() {
    let app = spawn_app().await;
    let (w, v) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let (hold, new_wallet) = (Uuid::new_v4(), Uuid::new_v4());
    let id = Uuid::new_v4;
    let with = |mut item: Value, field: &str, value: Value| {
        item[field] = value;
        item
    };
    let without = |mut item: Value, field: &str| {
        item.as_object_mut().unwrap().remove(field);
        item
    };
    let invalid = "INVALID_REQUEST";
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown field",
            with(deposit(w, 1, id()), "note", json!("x")),
            invalid,
        ),
        (
            "holdId on a deposit",
            with(deposit(w, 1, id()), "holdId", json!(hold)),
            invalid,
        ),
        (
            "transferId on a deposit",
            with(deposit(w, 1, id()), "transferId", json!(id())),
            invalid,
        ),
        (
            "toWalletId on a withdrawal",
            with(withdrawal(w, 1, id()), "toWalletId", json!(v)),
            invalid,
        ),
        (
            "a field of another type set to null",
            with(deposit(w, 1, id()), "toWalletId", json!(null)),
            invalid,
        ),
        (
            "walletId on a transfer",
            with(transfer(w, v, 1, id()), "walletId", json!(w)),
            invalid,
        ),
        (
            "operationId on a transfer",
            with(transfer(w, v, 1, id()), "operationId", json!(id())),
            invalid,
        ),
        (
            "walletId on a confirmation",
            with(confirm(hold, None), "walletId", json!(w)),
            invalid,
        ),
        (
            "pending on a confirmation",
            with(confirm(hold, None), "pending", json!(true)),
            invalid,
        ),
        (
            "amount on a void",
            with(void(hold), "amount", json!(1)),
            invalid,
        ),
        (
            "missing operationType",
            without(deposit(w, 1, id()), "operationType"),
            invalid,
        ),
        (
            "unknown operationType",
            with(deposit(w, 1, id()), "operationType", json!("REFUND")),
            invalid,
        ),
        (
            "lowercase operationType",
            with(deposit(w, 1, id()), "operationType", json!("deposit")),
            invalid,
        ),
        (
            "operationType a number",
            with(deposit(w, 1, id()), "operationType", json!(1)),
            invalid,
        ),
        (
            "missing walletId",
            without(deposit(w, 1, id()), "walletId"),
            invalid,
        ),
        (
            "missing amount",
            without(withdrawal(w, 1, id()), "amount"),
            invalid,
        ),
        (
            "transfer without fromWalletId",
            without(transfer(w, v, 1, id()), "fromWalletId"),
            invalid,
        ),
        (
            "transfer without toWalletId",
            without(transfer(w, v, 1, id()), "toWalletId"),
            invalid,
        ),
        (
            "confirmation without holdId",
            without(confirm(hold, Some(1)), "holdId"),
            invalid,
        ),
        (
            "void without holdId",
            without(void(hold), "holdId"),
            invalid,
        ),
        (
            "walletId not a UUID",
            with(deposit(w, 1, id()), "walletId", json!("not-a-uuid")),
            invalid,
        ),
        (
            "operationId a number",
            with(deposit(w, 1, id()), "operationId", json!(7)),
            invalid,
        ),
        (
            "holdId not a UUID",
            with(void(hold), "holdId", json!("x")),
            invalid,
        ),
        (
            "pending deposit",
            pending(deposit(w, 1, id()), None),
            invalid,
        ),
        (
            "timeoutSeconds without pending",
            with(withdrawal(w, 1, id()), "timeoutSeconds", json!(60)),
            invalid,
        ),
        (
            "pending not a boolean",
            with(withdrawal(w, 1, id()), "pending", json!("yes")),
            invalid,
        ),
        (
            "timeoutSeconds 0",
            pending(withdrawal(w, 1, id()), Some(0)),
            invalid,
        ),
        ("transfer of 0", transfer(w, v, 0, id()), "INVALID_AMOUNT"),
        (
            "confirmation of 0",
            confirm(hold, Some(0)),
            "INVALID_AMOUNT",
        ),
        (
            "deposit of 0 to a new wallet",
            deposit(new_wallet, 0, id()),
            "INVALID_AMOUNT",
        ),
        (
            "transfer to the same wallet",
            transfer(w, w, 1, id()),
            "SAME_WALLET",
        ),
    ];
    // Each malformed item is followed by a good deposit of 1.
    let mut items = Vec::new();
    for (_, item, _) in &cases {
        items.push(item.clone());
        items.push(deposit(w, 1, id()));
    }

    let results = results(&app.batch(&batch(&items)).await, items.len());

    for ((case, _, code), pair) in cases.iter().zip(results.chunks(2)) {
        assert_item_problem(case, &pair[0], StatusCode::BAD_REQUEST, code);
        assert_eq!(pair[0]["replayed"], false, "{case}");
        assert_item_ok(&format!("the deposit after {case}"), &pair[1]);
    }
    let good = cases.len() as u64;
    assert_eq!(app.funds(w).await, (100 + good, 0, 100 + good));
    assert_eq!(app.history(w).await.len(), 1 + cases.len());
    assert_eq!(app.funds(v).await, (0, 0, 0));
    assert_no_wallet("deposit of 0 to a new wallet", &app, new_wallet).await;
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn invalid_amounts_are_each_items_400_invalid_amount() {
    let app = spawn_app().await;
    let (w, v) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    // Raw JSON: numbers past every integer type and past a double's range, which `json!`
    // cannot build, with the amounts every endpoint refuses.
    let too_large = (MAX_MONEY + 1).to_string();
    let amounts = [
        "0",
        "-1",
        &too_large,
        "18446744073709551616",
        "-9223372036854775809",
        "1e400",
        "1.5",
        "10.0",
        "1e3",
        "\"10\"",
        "true",
        "null",
        "[1]",
        "{}",
    ];
    let mut items = Vec::new();
    for amount in amounts {
        for kind in ["DEPOSIT", "WITHDRAW"] {
            items.push(format!(
                r#"{{"operationType": "{kind}", "walletId": "{w}", "amount": {amount}}}"#
            ));
        }
        items.push(format!(
            r#"{{"operationType": "TRANSFER", "fromWalletId": "{w}", "toWalletId": "{v}", "amount": {amount}}}"#
        ));
    }
    let body = format!(r#"{{"items": [{}]}}"#, items.join(", "));

    let answer = Reply::of(app.post_raw(BATCHES, body).await).await;

    let results = results(&answer, items.len());
    for (item, result) in items.iter().zip(&results) {
        assert_item_problem(item, result, StatusCode::BAD_REQUEST, "INVALID_AMOUNT");
    }
    assert_eq!(
        snapshot(&app, &[w, v]).await,
        [((100, 0, 100), 1), ((0, 0, 0), 0)]
    );
}

// ---------------------------------------------------------------- refused as a whole

#[tokio::test]
async fn a_body_that_is_not_a_batch_is_a_whole_batch_400_and_stores_nothing() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let id = Uuid::new_v4();
    let item = deposit(wallet, 10, id).to_string();
    let cases = [
        ("a JSON array", format!("[{item}]")),
        ("a JSON string", "\"DEPOSIT\"".to_owned()),
        ("a JSON number", "1".to_owned()),
        ("JSON null", "null".to_owned()),
        ("no items", r#"{"atomic": false}"#.to_owned()),
        ("empty items", r#"{"items": []}"#.to_owned()),
        (
            "empty atomic items",
            r#"{"atomic": true, "items": []}"#.to_owned(),
        ),
        ("items an object", format!(r#"{{"items": {item}}}"#)),
        ("items null", r#"{"items": null}"#.to_owned()),
        (
            "an unknown field",
            format!(r#"{{"items": [{item}], "note": 1}}"#),
        ),
        (
            "atomic not a boolean",
            format!(r#"{{"atomic": "yes", "items": [{item}]}}"#),
        ),
        (
            "items twice",
            format!(r#"{{"items": [], "items": [{item}]}}"#),
        ),
        ("malformed JSON", format!(r#"{{"items": [{item}"#)),
        // The description says items are objects: anything else is not a batch.
        (
            "an item that is a number",
            format!(r#"{{"items": [{item}, 5]}}"#),
        ),
        (
            "an item that is a string",
            format!(r#"{{"items": [{item}, "DEPOSIT"]}}"#),
        ),
        (
            "an item that is null",
            format!(r#"{{"items": [{item}, null]}}"#),
        ),
        (
            "an item that is an array",
            format!(r#"{{"items": [[{item}]]}}"#),
        ),
        (
            "an item that is an array of its fields",
            format!(r#"{{"items": [["DEPOSIT", "{wallet}", null, 1]]}}"#),
        ),
    ];

    for (case, body) in cases {
        let answer = app.post_raw(BATCHES, body).await;
        assert_problem_in(case, answer, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
    let keyed = app
        .post_with_key(
            BATCHES,
            HeaderValue::from_static("batch-1"),
            &batch(&[deposit(wallet, 10, id)]),
        )
        .await;
    assert_problem_in(
        "an Idempotency-Key header",
        &keyed,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    )
    .await;
    let text = app
        .client
        .post(app.url(BATCHES))
        .header(CONTENT_TYPE, "text/plain")
        .body(batch(&[deposit(wallet, 10, id)]).to_string())
        .send()
        .await
        .unwrap();
    assert_problem_in(
        "text/plain",
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;

    assert_eq!(snapshot(&app, &[wallet]).await, [((100, 0, 100), 1)]);
    assert_no_operation("the item's id", &app, wallet, id).await;
}

#[tokio::test]
async fn more_items_than_the_configured_limit_is_a_whole_batch_400() {
    let app = spawn_app_with(&["--max-batch-items", "3"]).await;
    let wallet = app.funded_wallet(0).await;
    let four: Vec<Value> = (1..=4)
        .map(|n| deposit(wallet, n, Uuid::new_v4()))
        .collect();

    for body in [batch(&four), atomic(&four)] {
        let answer = app.batch(&body).await;
        assert_problem_in(
            "4 items of 3",
            &answer,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        )
        .await;
    }
    assert_eq!(snapshot(&app, &[wallet]).await, [((0, 0, 0), 0)]);

    let results = results(&app.batch(&batch(&four[..3])).await, 3);
    for result in &results {
        assert_item_ok("3 items of 3", result);
    }
    assert_eq!(snapshot(&app, &[wallet]).await, [((6, 0, 6), 3)]);
}

// ---------------------------------------------------------------- all or nothing

#[tokio::test]
async fn an_atomic_batch_whose_items_all_succeed_applies_every_one() {
    let app = spawn_app().await;
    let (wallet, new_wallet) = (app.funded_wallet(100).await, Uuid::new_v4());
    let ids: [Uuid; 4] = std::array::from_fn(|_| Uuid::new_v4());
    let items = [
        deposit(new_wallet, 100, ids[0]),
        withdrawal(new_wallet, 60, ids[1]),
        transfer(new_wallet, wallet, 40, ids[2]),
        pending(withdrawal(wallet, 10, ids[3]), None),
    ];

    let results = results(&app.batch(&atomic(&items)).await, items.len());

    for (index, result) in results.iter().enumerate() {
        let record = assert_item_ok(&format!("item {index}"), result);
        let expected = if index == 3 { "PENDING" } else { "APPLIED" };
        assert_eq!(record["status"], expected, "{record}");
    }
    assert_eq!(results[2]["body"]["fromBalance"], 0);
    assert_eq!(app.funds(new_wallet).await, (0, 0, 0));
    assert_eq!(app.funds(wallet).await, (140, 10, 130));
    assert_eq!(app.history(new_wallet).await.len(), 3);
    assert_eq!(app.history(wallet).await.len(), 3);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn an_atomic_batch_with_a_failing_item_stores_nothing_and_a_corrected_retry_applies() {
    let app = spawn_app().await;
    let (w, v, n) = (
        app.funded_wallet(100).await,
        app.funded_wallet(0).await,
        Uuid::new_v4(),
    );
    let ids: [Uuid; 5] = std::array::from_fn(|_| Uuid::new_v4());
    let items = [
        deposit(w, 10, ids[0]),
        deposit(n, 5, ids[1]),
        transfer(w, v, 20, ids[2]),
        pending(withdrawal(w, 30, ids[3]), None),
        withdrawal(w, 500, ids[4]),
    ];
    let before = snapshot(&app, &[w, v]).await;

    let refused = results(&app.batch(&atomic(&items)).await, items.len());

    for (index, result) in refused[..4].iter().enumerate() {
        assert_linked(&format!("item {index}"), result);
    }
    let problem = assert_item_problem(
        "the withdrawal",
        &refused[4],
        StatusCode::CONFLICT,
        "INSUFFICIENT_FUNDS",
    );
    assert_eq!(problem["operationId"], ids[4].to_string(), "{problem}");
    assert_eq!(problem["walletId"], w.to_string(), "{problem}");
    assert_eq!(refused[4]["replayed"], false);
    assert_eq!(
        snapshot(&app, &[w, v]).await,
        before,
        "no entry, no balance moved"
    );
    assert_no_wallet("the new wallet", &app, n).await;
    for id in [ids[0], ids[3], ids[4]] {
        assert_no_operation("an item's id", &app, w, id).await;
    }
    assert_no_transfer("the transfer", &app, ids[2]).await;
    let hold = app.hold(ids[3]).await;
    assert_problem_in("the hold", &hold, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    app.assert_ledger_consistent().await;

    // The rejection was not stored: once the money is there, the same ids are decided afresh.
    assert_eq!(app.deposit(w, 1000).await.status(), StatusCode::OK);
    let applied = results(&app.batch(&atomic(&items)).await, items.len());
    for (index, result) in applied.iter().enumerate() {
        assert_item_ok(&format!("retried item {index}"), result);
    }
    // 1100 + 10 - 20 - 500, 30 of it held.
    assert_eq!(app.funds(w).await, (590, 30, 560));
    assert_eq!(app.funds(v).await, (20, 0, 20));
    assert_eq!(app.funds(n).await, (5, 0, 5));
    assert_eq!(app.history(w).await.len(), 6);
    app.assert_ledger_consistent().await;
}

/// The failing items of [`any_failing_item_fails_an_atomic_batch_as_a_whole`]: its case, the
/// status, code and replayed flag of its own result.
const FAILING: [(&str, StatusCode, &str, bool); 13] = [
    (
        "invalid amount",
        StatusCode::BAD_REQUEST,
        "INVALID_AMOUNT",
        false,
    ),
    (
        "unknown field",
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        false,
    ),
    (
        "pending deposit",
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        false,
    ),
    ("same wallet", StatusCode::BAD_REQUEST, "SAME_WALLET", false),
    (
        "withdrawal from a missing wallet",
        StatusCode::NOT_FOUND,
        "WALLET_NOT_FOUND",
        false,
    ),
    (
        "transfer to a missing wallet",
        StatusCode::NOT_FOUND,
        "WALLET_NOT_FOUND",
        false,
    ),
    (
        "insufficient funds",
        StatusCode::CONFLICT,
        "INSUFFICIENT_FUNDS",
        false,
    ),
    (
        "transfer beyond available",
        StatusCode::CONFLICT,
        "INSUFFICIENT_FUNDS",
        false,
    ),
    (
        "a stored rejection replayed",
        StatusCode::CONFLICT,
        "INSUFFICIENT_FUNDS",
        true,
    ),
    (
        "id reused",
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
        false,
    ),
    (
        "hold not found",
        StatusCode::NOT_FOUND,
        "HOLD_NOT_FOUND",
        false,
    ),
    (
        "hold not pending",
        StatusCode::CONFLICT,
        "HOLD_NOT_PENDING",
        false,
    ),
    (
        "confirmation beyond the hold",
        StatusCode::BAD_REQUEST,
        "INVALID_AMOUNT",
        false,
    ),
];

/// The failing item of `case` (of [`FAILING`]) on `wallet` (100), after what the case needs
/// first through the single endpoints.
async fn failing_item(app: &TestApp, case: &str, wallet: Uuid, other: Uuid) -> Value {
    let id = Uuid::new_v4();
    let hold = async |id: Uuid| {
        let placed = single(app, &pending(withdrawal(wallet, 10, id), None)).await;
        assert_eq!(placed.status, StatusCode::OK, "{case}: {}", placed.text());
    };
    match case {
        "invalid amount" => deposit(wallet, 0, id),
        "unknown field" => {
            let mut item = deposit(wallet, 1, id);
            item["note"] = json!("x");
            item
        }
        "pending deposit" => pending(deposit(wallet, 1, id), None),
        "same wallet" => transfer(wallet, wallet, 1, id),
        "withdrawal from a missing wallet" => withdrawal(Uuid::new_v4(), 1, id),
        "transfer to a missing wallet" => transfer(wallet, Uuid::new_v4(), 1, id),
        "insufficient funds" => withdrawal(wallet, 1000, id),
        "transfer beyond available" => {
            hold(Uuid::new_v4()).await;
            transfer(wallet, other, 101, id)
        }
        "a stored rejection replayed" => {
            let rejected = single(app, &withdrawal(wallet, 1000, id)).await;
            assert_eq!(rejected.status, StatusCode::CONFLICT, "{}", rejected.text());
            withdrawal(wallet, 1000, id)
        }
        "id reused" => {
            let first = single(app, &deposit(wallet, 3, id)).await;
            assert_eq!(first.status, StatusCode::OK, "{}", first.text());
            deposit(wallet, 4, id)
        }
        "hold not found" => confirm(id, None),
        "hold not pending" => {
            hold(id).await;
            let voided = app.void_hold(id).await;
            assert_eq!(voided.status, StatusCode::OK, "{}", voided.text());
            confirm(id, None)
        }
        "confirmation beyond the hold" => {
            hold(id).await;
            confirm(id, Some(11))
        }
        other => unreachable!("no case {other}"),
    }
}

#[tokio::test]
async fn any_failing_item_fails_an_atomic_batch_as_a_whole() {
    let app = spawn_app().await;
    for (case_index, &(case, status, code, replayed)) in FAILING.iter().enumerate() {
        let (w, v, n) = (
            app.funded_wallet(100).await,
            app.funded_wallet(0).await,
            Uuid::new_v4(),
        );
        let failing = failing_item(&app, case, w, v).await;
        let ids: [Uuid; 3] = std::array::from_fn(|_| Uuid::new_v4());
        let mut items = vec![
            deposit(w, 10, ids[0]),
            transfer(w, v, 5, ids[1]),
            deposit(n, 5, ids[2]),
        ];
        // First, last, and in between.
        let at = case_index % (items.len() + 1);
        items.insert(at, failing);
        let before = snapshot(&app, &[w, v]).await;

        let results = results(&app.batch(&atomic(&items)).await, items.len());

        for (index, result) in results.iter().enumerate() {
            if index == at {
                assert_item_problem(case, result, status, code);
                assert_eq!(result["replayed"], replayed, "{case}: {result}");
            } else {
                assert_linked(&format!("{case}, item {index}"), result);
            }
        }
        assert_eq!(
            snapshot(&app, &[w, v]).await,
            before,
            "{case}: nothing stored"
        );
        assert_no_operation(case, &app, w, ids[0]).await;
        assert_no_transfer(case, &app, ids[1]).await;
        assert_no_wallet(case, &app, n).await;
    }
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- holds

#[tokio::test]
async fn holds_placed_by_a_batch_are_confirmed_and_voided_by_a_later_batch() {
    let app = spawn_app().await;
    let (w, v) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let [x, y, z, refused, unknown] = std::array::from_fn(|_| Uuid::new_v4());
    let placing = [
        pending(withdrawal(w, 60, x), None),
        pending(withdrawal(w, 20, y), Some(3600)),
        pending(transfer(w, v, 10, z), None),
        // What the holds leave available is all a later item may take.
        withdrawal(w, 11, refused),
    ];

    let placed = results(&app.batch(&batch(&placing)).await, placing.len());

    let first = assert_item_ok("hold x", &placed[0]);
    assert_eq!(
        (&first["holdId"], &first["status"]),
        (&json!(x), &json!("PENDING"))
    );
    assert_eq!(
        (&first["balance"], &first["available"]),
        (&json!(100), &json!(40))
    );
    let second = assert_item_ok("hold y", &placed[1]);
    assert_timestamp(&second["expiresAt"]);
    assert_eq!(second["available"], 20, "{second}");
    let third = assert_item_ok("hold z", &placed[2]);
    assert_eq!(
        (&third["status"], &third["fromAvailable"]),
        (&json!("PENDING"), &json!(10))
    );
    let problem = assert_item_problem(
        "beyond available",
        &placed[3],
        StatusCode::CONFLICT,
        "INSUFFICIENT_FUNDS",
    );
    assert_eq!(
        (&problem["balance"], &problem["available"]),
        (&json!(100), &json!(10))
    );
    assert_eq!(app.funds(w).await, (100, 90, 10));
    assert_eq!(app.funds(v).await, (0, 0, 0));

    let deciding = [
        confirm(x, Some(25)),
        void(y),
        confirm(z, None),
        confirm(unknown, None),
        void(x),
        confirm(x, Some(25)),
    ];
    let decided = results(&app.batch(&batch(&deciding)).await, deciding.len());

    let confirmed = assert_item_ok("confirm x", &decided[0]);
    assert_eq!(confirmed["status"], "CONFIRMED", "{confirmed}");
    assert_eq!(
        (&confirmed["amount"], &confirmed["confirmedAmount"]),
        (&json!(60), &json!(25))
    );
    assert_eq!(assert_item_ok("void y", &decided[1])["status"], "VOIDED");
    let moved = assert_item_ok("confirm z", &decided[2]);
    assert_eq!(
        (&moved["status"], &moved["confirmedAmount"]),
        (&json!("CONFIRMED"), &json!(10))
    );
    assert_eq!(moved["toWalletId"], v.to_string(), "{moved}");
    let missing = assert_item_problem(
        "unknown hold",
        &decided[3],
        StatusCode::NOT_FOUND,
        "HOLD_NOT_FOUND",
    );
    assert_eq!(missing["holdId"], unknown.to_string(), "{missing}");
    let resolved = assert_item_problem(
        "void x",
        &decided[4],
        StatusCode::CONFLICT,
        "HOLD_NOT_PENDING",
    );
    assert_eq!(resolved["holdId"], x.to_string(), "{resolved}");
    assert_eq!(decided[5]["status"], 200, "{}", decided[5]);
    assert_eq!(decided[5]["replayed"], true, "the same confirmation again");
    assert_eq!(decided[5]["body"], confirmed);

    // 100 - 25 - 10, nothing held.
    assert_eq!(app.funds(w).await, (65, 0, 65));
    assert_eq!(app.funds(v).await, (10, 0, 10));
    for (hold, status) in [(x, "CONFIRMED"), (y, "VOIDED"), (z, "CONFIRMED")] {
        let record = app.hold(hold).await;
        assert_eq!(record.json()["status"], status, "{}", record.text());
    }
    // Funding, the rejection, 3 holds placed and 3 resolved.
    assert_eq!(app.history(w).await.len(), 8);
    assert_eq!(app.history(v).await.len(), 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_hold_placed_by_an_earlier_item_is_resolved_by_a_later_item_of_the_same_batch() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let [kept, released] = std::array::from_fn(|_| Uuid::new_v4());
    let items = [
        pending(withdrawal(wallet, 30, kept), None),
        confirm(kept, Some(10)),
        pending(withdrawal(wallet, 30, released), None),
        void(released),
    ];

    let results = results(&app.batch(&batch(&items)).await, items.len());

    assert_eq!(assert_item_ok("place", &results[0])["status"], "PENDING");
    let confirmed = assert_item_ok("confirm", &results[1]);
    assert_eq!(
        (&confirmed["status"], &confirmed["confirmedAmount"]),
        (&json!("CONFIRMED"), &json!(10))
    );
    assert_eq!(assert_item_ok("place", &results[2])["status"], "PENDING");
    assert_eq!(assert_item_ok("void", &results[3])["status"], "VOIDED");
    assert_eq!(app.funds(wallet).await, (90, 0, 90));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_hold_placed_through_one_instance_is_decided_by_batches_on_another() {
    let first = spawn_app().await;
    let second = first.spawn_beside(&[]).await;
    let wallet = first.funded_wallet(100).await;
    let hold = Uuid::new_v4();
    let placed = results(
        &first
            .batch(&batch(&[pending(withdrawal(wallet, 40, hold), None)]))
            .await,
        1,
    );
    assert_eq!(assert_item_ok("place", &placed[0])["status"], "PENDING");

    let confirmed = results(&second.batch(&batch(&[confirm(hold, Some(15))])).await, 1);
    let record = assert_item_ok("confirm on the other instance", &confirmed[0]);
    assert_eq!(record["confirmedAmount"], 15, "{record}");

    // The first instance placed the hold, but it is no longer pending.
    let voided = results(&first.batch(&batch(&[void(hold)])).await, 1);
    let problem = assert_item_problem("void", &voided[0], StatusCode::CONFLICT, "HOLD_NOT_PENDING");
    assert_eq!(problem["holdId"], hold.to_string(), "{problem}");
    assert_eq!(first.funds(wallet).await, (85, 0, 85));
    first.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- body limit

/// The batch route's default body limit: 512 bytes for each of the default 1000 items.
const BATCH_BODY_LIMIT: usize = 1000 * 512;

/// The other routes' default body limit.
const BODY_LIMIT: usize = 16 * 1024;

/// `body` with spaces after it, `length` bytes in all.
fn padded(body: &Value, length: usize) -> String {
    let mut text = body.to_string();
    assert!(text.len() <= length, "{} bytes fit in {length}", text.len());
    text.push_str(&" ".repeat(length - text.len()));
    text
}

/// A request of `body` to the batch route, sent in one chunk without a declared length.
fn chunked(body: &str) -> Vec<u8> {
    format!(
        "POST {BATCHES} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn a_thousand_item_batch_is_accepted_and_applied_exactly() {
    let app = spawn_app_with(&PATIENT).await;
    let wallet = app.funded_wallet(0).await;
    let ids: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
    let items: Vec<Value> = ids.iter().map(|&id| deposit(wallet, 1, id)).collect();
    let body = batch(&items);
    assert!(
        body.to_string().len() > BODY_LIMIT,
        "more than any other route takes"
    );

    let results = results(&app.batch(&body).await, 1000);

    for (n, (result, id)) in results.iter().zip(&ids).enumerate() {
        let record = assert_item_ok(&format!("deposit {n}"), result);
        assert_eq!(record["operationId"], id.to_string(), "in item order");
        assert_eq!(record["balance"], n + 1, "each sees the ones before it");
    }
    assert_eq!(app.funds(wallet).await, (1000, 0, 1000));
    assert_eq!(app.history(wallet).await.len(), 1000);
    assert_eq!(app.assert_history_adds_up(wallet).await, 1000);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_batch_body_may_take_512_bytes_per_item_and_no_more() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(0).await;

    let at_limit = padded(
        &batch(&[deposit(wallet, 1, Uuid::new_v4())]),
        BATCH_BODY_LIMIT,
    );
    let answer = Reply::of(app.post_raw(BATCHES, at_limit).await).await;
    assert_item_ok("a body at the limit", &results(&answer, 1)[0]);
    let over = padded(
        &batch(&[deposit(wallet, 2, Uuid::new_v4())]),
        BATCH_BODY_LIMIT + 1,
    );
    let answer = app.post_raw(BATCHES, over).await;
    assert_problem_in(
        "one byte over",
        answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // Without a declared length the limit is the same: a body over the other routes' limit
    // is read, one over the batch route's is not.
    let streamed = padded(
        &batch(&[deposit(wallet, 4, Uuid::new_v4())]),
        4 * BODY_LIMIT,
    );
    let answer = exchange(app.addr, &chunked(&streamed)).await;
    assert_item_ok("a streamed body of 64 KiB", &results(&answer, 1)[0]);
    let over = padded(
        &batch(&[deposit(wallet, 8, Uuid::new_v4())]),
        BATCH_BODY_LIMIT + 1,
    );
    let answer = exchange(app.addr, &chunked(&over)).await;
    assert_problem_in(
        "streamed, one byte over",
        answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // The other routes keep their own limit.
    let single = padded(&deposit(wallet, 16, Uuid::new_v4()), BODY_LIMIT + 1);
    let answer = app.post_raw("/api/v1/wallet", single).await;
    assert_problem_in(
        "a deposit over 16 KiB",
        answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    assert_eq!(snapshot(&app, &[wallet]).await, [((5, 0, 5), 2)]);
}

// ---------------------------------------------------------------- concurrency

/// Sends 16 batches of 50 withdrawals of 1 at once from one wallet holding 500, on a server
/// with `flags`: exactly 500 are applied, the rest refused, and each batch is decided in one
/// go (its applied withdrawals take the balance down one by one, and once one is refused the
/// rest of that batch are too).
async fn concurrent_withdrawal_batches_apply_exactly_what_the_wallet_holds(flags: &[&str]) {
    let app = Arc::new(spawn_app_with(flags).await);
    let wallet = app.funded_wallet(500).await;
    let batches: JoinSet<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            async move {
                let items: Vec<Value> = (0..50)
                    .map(|_| withdrawal(wallet, 1, Uuid::new_v4()))
                    .collect();
                results(&app.batch(&batch(&items)).await, 50)
            }
        })
        .collect();

    let (mut applied, mut refused) = (0, 0);
    for results in batches.join_all().await {
        let mut balances = Vec::new();
        for result in &results {
            if result["status"] == 200 {
                let record = &result["body"];
                assert_eq!(record["status"], "APPLIED", "{record}");
                balances.push(record["balance"].as_u64().expect("a balance"));
                applied += 1;
            } else {
                let code = "INSUFFICIENT_FUNDS";
                assert_item_problem("withdrawal", result, StatusCode::CONFLICT, code);
                refused += 1;
            }
        }
        let prefix = results.iter().take_while(|r| r["status"] == 200).count();
        assert_eq!(prefix, balances.len(), "refusals come last: {results:?}");
        for pair in balances.windows(2) {
            assert_eq!(
                pair[0],
                pair[1] + 1,
                "in order, one at a time: {balances:?}"
            );
        }
    }
    assert_eq!((applied, refused), (500, 300));
    assert_eq!(app.assert_history_adds_up(wallet).await, 0);
    assert_eq!(app.history(wallet).await.len(), 801);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_batches_of_50_withdrawals_from_500_apply_exactly_500() {
    concurrent_withdrawal_batches_apply_exactly_what_the_wallet_holds(&PATIENT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_are_exact_in_one_transaction_per_request_mode_too() {
    let flags = [PATIENT[0], PATIENT[1], "--max-batch", "1"];
    concurrent_withdrawal_batches_apply_exactly_what_the_wallet_holds(&flags).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_atomic_batches_each_apply_completely_or_not_at_all() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let (w, v) = (app.funded_wallet(300).await, app.funded_wallet(0).await);
    // Half the batches take 50 from `w` in five withdrawals; the others move 20 from `w` to
    // `v` between a deposit and a withdrawal on `v` that leave it as it was. 560 asked of 300.
    let batches: JoinSet<_> = (0..16)
        .map(|n| {
            let app = app.clone();
            async move {
                let id = Uuid::new_v4;
                let items = if n % 2 == 0 {
                    (0..5).map(|_| withdrawal(w, 10, id())).collect()
                } else {
                    vec![
                        deposit(v, 5, id()),
                        transfer(w, v, 20, id()),
                        withdrawal(v, 25, id()),
                    ]
                };
                (
                    items.len(),
                    results(&app.batch(&atomic(&items)).await, items.len()),
                )
            }
        })
        .collect();

    let (mut fifties, mut twenties, mut refused) = (0, 0, Vec::new());
    for (size, results) in batches.join_all().await {
        let takes = if size == 5 { 50 } else { 20 };
        let applied = results.iter().filter(|r| r["status"] == 200).count();
        if applied == size {
            for result in &results {
                assert_eq!(result["body"]["status"], "APPLIED", "{result}");
            }
            if takes == 50 {
                fifties += 1;
            } else {
                twenties += 1;
            }
            continue;
        }
        assert_eq!(applied, 0, "an atomic batch applied in part: {results:?}");
        // Its own failures are insufficient funds after the items it could pay for: `w`'s
        // for the transfer, and then `v`'s for the withdrawal the transfer was to pay for; or
        // `w`'s for a withdrawal and every one after it.
        let linked = results
            .iter()
            .take_while(|r| r["body"]["code"] == "LINKED_ITEM_FAILED")
            .count();
        let failing = if takes == 20 { 1..3 } else { linked..size };
        assert!(
            !failing.is_empty(),
            "no item of its own failed: {results:?}"
        );
        for (index, result) in results.iter().enumerate() {
            let case = format!("refused batch of {takes}, item {index}");
            if failing.contains(&index) {
                let code = "INSUFFICIENT_FUNDS";
                let problem = assert_item_problem(&case, result, StatusCode::CONFLICT, code);
                let refused_by = if (takes, index) == (20, 2) { v } else { w };
                let wallet = refused_by.to_string();
                assert_eq!(problem["walletId"], wallet, "{case}: {problem}");
            } else {
                assert_linked(&case, result);
            }
        }
        refused.push(takes);
    }

    let balance = 300 - 50 * fifties - 20 * twenties;
    assert_eq!(app.assert_history_adds_up(w).await, balance);
    assert_eq!(app.assert_history_adds_up(v).await, 0);
    assert_eq!(
        app.history(w).await.len() as u64,
        1 + 5 * fifties + twenties
    );
    assert_eq!(app.history(v).await.len() as u64, 3 * twenties);
    assert!(!refused.is_empty(), "some batches must fail as a whole");
    // `w` never grows: a batch refused for its funds could not have been paid at the end.
    for takes in refused {
        assert!(
            balance < takes,
            "a batch of {takes} refused, {balance} left"
        );
    }
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- crash

/// The crash test's hot wallets, each first funded with [`HOT_FUNDING`].
const HOT_WALLETS: usize = 3;
const HOT_FUNDING: u64 = 100;

/// Clients of the crash test, and the items of each of their batches.
const CRASH_CLIENTS: u64 = 6;
const CRASH_ITEMS: usize = 8;

/// Batches answered before a kill, and after each restart: the service serves (again).
const CRASH_PROGRESS: u64 = 50;

/// Longest wait for that progress: a bound on a hang, not a timing expectation.
const PROGRESS_LIMIT: Duration = Duration::from_secs(60);

/// One client of the crash test: batches of random deposits, withdrawals and transfers
/// among `wallets` (a third of them atomic), each sent with the same body until it is
/// answered; counts each answered batch in `answered` and returns the items the answers say
/// were stored. Stops after the batch in flight once `stop` is set.
async fn batch_client(
    app: Arc<TestApp>,
    wallets: Vec<Uuid>,
    seed: u64,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> Vec<Settled> {
    let mut random = SmallRng::seed_from_u64(seed);
    let mut settled = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let all_or_nothing = random.random_range(0..3) == 0;
        let n = wallets.len();
        let moves: Vec<(Uuid, Move, u64)> = (0..CRASH_ITEMS)
            .map(|_| {
                let first = random.random_range(0..n);
                let movement = match random.random_range(0..3) {
                    0 => Move::Transfer {
                        from: wallets[first],
                        to: wallets[(first + random.random_range(1..n)) % n],
                    },
                    1 => Move::Deposit(wallets[first]),
                    _ => Move::Withdraw(wallets[first]),
                };
                (Uuid::new_v4(), movement, random.random_range(1..=20))
            })
            .collect();
        let items: Vec<Value> = moves
            .iter()
            .map(|&(id, movement, amount)| movement.batch_item(amount, id))
            .collect();
        let body = json!({"atomic": all_or_nothing, "items": items});

        let answer = bank::post_until_answered(&app, BATCHES, Some(&body)).await;

        let results = results(&answer, items.len());
        // Per item: applied (200), rejected and stored (409), or not stored (linked).
        let outcomes: Vec<Option<bool>> = moves
            .iter()
            .zip(&results)
            .map(|(&(id, movement, _), result)| {
                let record = &result["body"];
                let named = record[movement.id_field()] == id.to_string();
                match (result["status"].as_u64(), record["code"].as_str()) {
                    (Some(200), _) if named && record["status"] == "APPLIED" => Some(true),
                    (Some(409), Some("INSUFFICIENT_FUNDS")) if named => Some(false),
                    (Some(409), Some("LINKED_ITEM_FAILED")) if all_or_nothing => None,
                    _ => panic!("item {id} (atomic: {all_or_nothing}): {result}"),
                }
            })
            .collect();
        let applied = outcomes.iter().filter(|o| **o == Some(true)).count();
        if all_or_nothing && applied < outcomes.len() {
            // Refused as a whole: nothing of it was stored, not even its rejections.
            assert_eq!(applied, 0, "an atomic batch applied in part: {results:?}");
            assert!(outcomes.contains(&Some(false)), "{results:?}");
        } else {
            assert!(!outcomes.contains(&None), "{results:?}");
            for (&(id, movement, amount), outcome) in moves.iter().zip(outcomes) {
                settled.push(Settled::new(id, movement, amount, outcome == Some(true)));
            }
        }
        answered.fetch_add(1, Ordering::Relaxed);
    }
    settled
}

/// Waits until `more` batches beyond those counted now are answered.
async fn wait_for_batches(answered: &AtomicU64, more: u64, what: &str) {
    let target = answered.load(Ordering::Relaxed) + more;
    eventually(what, PROGRESS_LIMIT, async || {
        (answered.load(Ordering::Relaxed) >= target).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_killed_with_batches_in_flight_records_every_acknowledged_item_exactly_once() {
    // A fixed port, so that clients keep one URL across crashes.
    let http_addr = format!("127.0.0.1:{}", free_port());
    let flags = [
        "--http-addr",
        &http_addr,
        "--shards",
        "2",
        "--db-pool-size",
        "4",
        "--request-timeout-ms",
        "2000",
        "--log",
        "info,sqlx=warn",
    ];
    let mut service = ServerProcess::start(&flags).await;
    let app = Arc::new(service.app());
    let wallets: Vec<Uuid> = (0..HOT_WALLETS).map(|_| Uuid::new_v4()).collect();
    let funding: Vec<(Uuid, Move)> = wallets
        .iter()
        .map(|&wallet| (Uuid::new_v4(), Move::Deposit(wallet)))
        .collect();
    let items: Vec<Value> = funding
        .iter()
        .map(|&(id, movement)| movement.batch_item(HOT_FUNDING, id))
        .collect();
    let mut settled = Vec::new();
    for (result, &(id, movement)) in results(&app.batch(&batch(&items)).await, HOT_WALLETS)
        .iter()
        .zip(&funding)
    {
        assert_item_ok("funding", result);
        settled.push(Settled::new(id, movement, HOT_FUNDING, true));
    }

    let (stop, answered) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let clients: JoinSet<_> = (0..CRASH_CLIENTS)
        .map(|seed| {
            let (wallets, stop, answered) = (wallets.clone(), stop.clone(), answered.clone());
            batch_client(app.clone(), wallets, seed, stop, answered)
        })
        .collect();
    wait_for_batches(&answered, CRASH_PROGRESS, "batches before the first kill").await;
    for kill in 1..=2 {
        service.kill().await;
        // Clients meet refused connections and answers cut off while it is down.
        tokio::time::sleep(Duration::from_millis(200)).await;
        service.restart().await;
        let what = format!("batches after restart {kill}");
        wait_for_batches(&answered, CRASH_PROGRESS, &what).await;
    }
    stop.store(true, Ordering::Relaxed);
    for log in clients.join_all().await {
        settled.extend(log);
    }

    let findings = bank::verify(&app, &settled).await;
    println!(
        "batches crash: {} batches answered, items acknowledged={} (applied={} rejected={}) \
         transfers_applied={}",
        answered.load(Ordering::Relaxed),
        findings.acknowledged,
        findings.applied,
        findings.rejected,
        findings.transfers_applied
    );
    assert!(
        findings.violations.is_empty(),
        "bank invariants broken: {:#?}",
        &findings.violations[..findings.violations.len().min(20)]
    );
    assert_eq!(findings.lost, 0, "acknowledged items lost: {findings:?}");
    assert_eq!(findings.duplicated, 0, "items recorded twice: {findings:?}");
    assert!(findings.transfers_applied > 0, "{findings:?}");
}

// ---------------------------------------------------------------- description

#[tokio::test]
async fn the_openapi_description_documents_post_batches() {
    let description = router().get("/api-docs/openapi.json").await;
    assert_eq!(description.status, StatusCode::OK);
    let spec = description.json();

    let operation = &spec["paths"][BATCHES]["post"];
    assert!(operation.is_object(), "POST {BATCHES} in {}", spec["paths"]);
    let request = &operation["requestBody"]["content"]["application/json"]["schema"];
    assert!(request.is_object(), "its request body: {operation}");
    let answer = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(answer.is_object(), "its results: {operation}");
    let codes = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("the error codes");
    assert!(codes.contains(&json!("LINKED_ITEM_FAILED")), "{codes:?}");
    let item = &spec["components"]["schemas"]["BatchItem"]["properties"];
    for field in [
        "operationType",
        "walletId",
        "fromWalletId",
        "holdId",
        "amount",
    ] {
        assert!(
            item[field].is_object(),
            "BatchItem documents {field}: {item}"
        );
    }
}
