//! The event stream: every committed change reaches RabbitMQ once its transaction commits,
//! with the record the API shows, and one wallet's events arrive in commit order; with
//! events off nothing is written for them.

use crate::helpers::events::{EventConsumer, Received, assert_each_wallets_order, broker_url};
use crate::helpers::{
    Reply, TestApp, operation_body, pending, spawn_app, spawn_app_with, transfer_body,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Long enough for any event to arrive on a loaded machine: a bound on a hang.
const ARRIVAL: Duration = Duration::from_secs(30);

async fn app_with_events(flags: &[&str]) -> TestApp {
    let url = broker_url();
    let mut all = vec!["--events-amqp-url", url.as_str()];
    all.extend_from_slice(flags);
    spawn_app_with(&all).await
}

async fn post(app: &TestApp, path: &str, body: &Value) -> Reply {
    app.post(path, Some(body)).await
}

async fn get(app: &TestApp, path: &str) -> Value {
    let reply = Reply::of(app.get(path).await).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// Checks what every message carries whatever its event: the envelope and the AMQP
/// properties that name it.
fn assert_well_formed(event: &Received) {
    let id = event.event_id();
    assert!(Uuid::parse_str(id).is_ok(), "eventId in {:?}", event.body);
    assert_eq!(
        event.message_id.as_deref(),
        Some(id),
        "message_id is the event id"
    );
    assert_eq!(event.routing_key, event.kind(), "routing key is the type");
    assert_eq!(event.delivery_mode, Some(2), "persistent");
    assert_eq!(event.content_type.as_deref(), Some("application/json"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(event.body["occurredAt"].as_str().unwrap_or(""))
            .is_ok(),
        "occurredAt in {:?}",
        event.body
    );
    let mut fields: Vec<&str> = event
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["data", "eventId", "occurredAt", "type"]);
}

#[tokio::test]
async fn every_committed_change_is_published_with_the_record_the_api_shows() {
    let events = EventConsumer::start().await;
    let app = app_with_events(&[]).await;
    let (payer, payee) = (Uuid::new_v4(), Uuid::new_v4());
    let mut expected: Vec<(&str, Value)> = Vec::new();

    let deposit = post(
        &app,
        "/api/v1/wallet",
        &operation_body(payer, "DEPOSIT", 1000, None),
    )
    .await;
    assert_eq!(deposit.status, StatusCode::OK);
    expected.push(("operation.applied", deposit.json()));
    let withdrawal = post(
        &app,
        "/api/v1/wallet",
        &operation_body(payer, "WITHDRAW", 300, None),
    )
    .await;
    expected.push(("operation.applied", withdrawal.json()));
    let refused = Uuid::new_v4();
    let rejected = post(
        &app,
        "/api/v1/wallet",
        &operation_body(payer, "WITHDRAW", 5000, Some(refused)),
    )
    .await;
    assert_eq!(rejected.status, StatusCode::CONFLICT);
    let stored = get(
        &app,
        &format!("/api/v1/wallets/{payer}/operations/{refused}"),
    )
    .await;
    assert_eq!(stored["status"], "REJECTED");
    expected.push(("operation.rejected", stored));

    let opened = post(
        &app,
        "/api/v1/wallet",
        &operation_body(payee, "DEPOSIT", 10, None),
    )
    .await;
    expected.push(("operation.applied", opened.json()));
    let transfer = post(
        &app,
        "/api/v1/transfers",
        &transfer_body(payer, payee, 100, None),
    )
    .await;
    assert_eq!(transfer.status, StatusCode::OK);
    expected.push(("transfer.applied", transfer.json()));
    let too_much = Uuid::new_v4();
    let rejected = post(
        &app,
        "/api/v1/transfers",
        &transfer_body(payer, payee, 1_000_000, Some(too_much)),
    )
    .await;
    assert_eq!(rejected.status, StatusCode::CONFLICT);
    expected.push((
        "transfer.rejected",
        get(&app, &format!("/api/v1/transfers/{too_much}")).await,
    ));

    // A pending withdrawal is its hold; the confirmation is the hold confirmed.
    let hold = Uuid::new_v4();
    let placed = post(
        &app,
        "/api/v1/wallet",
        &pending(operation_body(payer, "WITHDRAW", 50, Some(hold)), None),
    )
    .await;
    assert_eq!(placed.status, StatusCode::OK);
    expected.push(("hold.pending", app.hold(hold).await.json()));
    let confirmed = app.confirm_hold(hold, Some(&json!({"amount": 30}))).await;
    assert_eq!(confirmed.status, StatusCode::OK);
    expected.push(("hold.confirmed", confirmed.json()));

    let transfer_hold = Uuid::new_v4();
    post(
        &app,
        "/api/v1/transfers",
        &pending(transfer_body(payer, payee, 20, Some(transfer_hold)), None),
    )
    .await;
    expected.push(("hold.pending", app.hold(transfer_hold).await.json()));
    let voided = app.void_hold(transfer_hold).await;
    assert_eq!(voided.status, StatusCode::OK);
    expected.push(("hold.voided", voided.json()));

    let expiring = Uuid::new_v4();
    post(
        &app,
        "/api/v1/wallet",
        &pending(
            operation_body(payer, "WITHDRAW", 5, Some(expiring)),
            Some(1),
        ),
    )
    .await;
    expected.push(("hold.pending", app.hold(expiring).await.json()));
    let expired = app
        .wait_for_hold_status(expiring, "EXPIRED", Duration::from_secs(10))
        .await;
    expected.push(("hold.expired", expired));

    // Nothing stored, nothing published: a replay, a refusal, a failed atomic batch, a
    // decision about a hold that is no longer pending.
    let replay = post(
        &app,
        "/api/v1/wallet",
        &operation_body(payer, "WITHDRAW", 5000, Some(refused)),
    )
    .await;
    assert_eq!(replay.replayed(), Some("true"));
    let missing = post(
        &app,
        "/api/v1/wallet",
        &operation_body(Uuid::new_v4(), "WITHDRAW", 1, None),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let atomic = app
        .batch(&json!({"atomic": true, "items": [
            {"operationType": "DEPOSIT", "walletId": payer, "amount": 7},
            {"operationType": "WITHDRAW", "walletId": payee, "amount": 1_000_000},
        ]}))
        .await;
    assert_eq!(atomic.status, StatusCode::OK);
    assert_eq!(atomic.json()["results"][0]["status"], 409);
    assert_eq!(app.void_hold(hold).await.status, StatusCode::CONFLICT);

    let wallets = [payer, payee];
    let arrived = events.wait_for(&wallets, expected.len(), ARRIVAL).await;
    // Anything more would have been published with the rest: give it a moment to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = events.about(&wallets);
    assert_eq!(
        crate::helpers::events::distinct(all.clone()).len(),
        expected.len(),
        "only these events: {all:#?}"
    );
    // Every request above waited for the one before: this is commit order.
    for (event, (kind, data)) in arrived.iter().zip(&expected) {
        assert_well_formed(event);
        assert_eq!(event.kind(), *kind, "{:#?}", event.body);
        assert_eq!(event.data(), data, "{kind}");
    }
}

#[tokio::test]
async fn without_a_broker_nothing_is_written_for_events() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(100).await;
    let other = app.funded_wallet(0).await;
    app.transfer(&transfer_body(wallet, other, 10, None)).await;
    let hold = Uuid::new_v4();
    app.operation(&pending(
        operation_body(wallet, "WITHDRAW", 5, Some(hold)),
        None,
    ))
    .await;
    assert_eq!(app.confirm_hold(hold, None).await.status, StatusCode::OK);
    // The outbox's numbers come from a sequence, which no rollback takes back: untouched, no
    // row was ever inserted.
    let (called,): (bool,) = sqlx::query_as("SELECT is_called FROM outbox_seq_seq")
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert!(!called, "an outbox row was written with events off");
}

/// The running balance of each wallet, step by step from the events in arrival order: each
/// event must carry what the ones before it add up to, or it arrived out of order (see
/// [`assert_each_wallets_order`]).
#[tokio::test]
async fn one_wallets_events_arrive_in_commit_order_under_concurrency() {
    let events = EventConsumer::start().await;
    let app = Arc::new(app_with_events(&[]).await);
    let (hot, other) = (Uuid::new_v4(), Uuid::new_v4());
    app.deposit(hot, 10_000).await;
    app.deposit(other, 10_000).await;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..16u64 {
        let app = Arc::clone(&app);
        clients.spawn(async move {
            for i in 0..25u64 {
                let amount = 1 + (client * 7 + i * 13) % 40;
                let body = match i % 4 {
                    0 => operation_body(hot, "DEPOSIT", amount, None),
                    1 => operation_body(hot, "WITHDRAW", amount, None),
                    2 => transfer_body(hot, other, amount, None),
                    _ => transfer_body(other, hot, amount, None),
                };
                let path = if i % 4 < 2 {
                    "/api/v1/wallet"
                } else {
                    "/api/v1/transfers"
                };
                let reply = app.post(path, Some(&body)).await;
                assert!(
                    matches!(reply.status, StatusCode::OK | StatusCode::CONFLICT),
                    "{}",
                    reply.text()
                );
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let arrived = events.wait_for(&[hot, other], 2 + 16 * 25, ARRIVAL).await;
    let funds = assert_each_wallets_order(&arrived, &[hot, other]);
    assert_eq!(funds[&hot].balance, app.balance(hot).await);
    assert_eq!(funds[&other].balance, app.balance(other).await);
}
