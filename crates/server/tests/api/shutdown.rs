//! Graceful shutdown of the real binary: on SIGTERM or SIGINT it stops accepting, answers
//! every request it holds, commits every batch, and exits 0.

use crate::helpers::metrics::scrape;
use crate::helpers::{ServerProcess, TestApp, kind, operation_body, status_and_body};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

const WORKERS: usize = 24;
const WALLETS: usize = 6;
/// Requests answered before the shutdown, so that it happens mid-stream.
const WARM_UP: usize = 200;
const FUNDING: u64 = 1_000;

/// One request a worker sent, and what came back.
struct Sent {
    id: Uuid,
    wallet: Uuid,
    deposit: bool,
    amount: u64,
    answer: Result<(StatusCode, Value), String>,
}

/// Sends operations one after another until `stop`, or until the server is gone.
async fn worker(
    app: Arc<TestApp>,
    worker: usize,
    wallets: Arc<Vec<Uuid>>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> Vec<Sent> {
    let mut sent = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let id = Uuid::new_v4();
        let wallet = wallets[(worker + n) % wallets.len()];
        let deposit = n % 3 != 0;
        let amount = 1 + ((worker * 7 + n * 13) % 40) as u64;
        let body = operation_body(wallet, kind(deposit), amount, Some(id));
        let answer = match app
            .client
            .post(app.url("/api/v1/wallet"))
            .json(&body)
            .send()
            .await
        {
            Ok(response) => Ok(status_and_body(response).await),
            Err(error) => Err(error.to_string()),
        };
        let failed = answer.is_err();
        sent.push(Sent {
            id,
            wallet,
            deposit,
            amount,
            answer,
        });
        answered.fetch_add(1, Ordering::SeqCst);
        if failed {
            break;
        }
    }
    sent
}

async fn wait_until<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    while !condition().await {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_answers_every_request_in_flight_and_loses_nothing() {
    // One writer, so that one locked wallet holds up every operation; deadlines far beyond
    // the test, so that held-up requests wait instead of timing out.
    let mut server = ServerProcess::start(&[
        "--shards",
        "1",
        "--request-timeout-ms",
        "120000",
        "--shutdown-timeout-ms",
        "120000",
    ])
    .await;
    let app = Arc::new(server.app());
    let mut wallets = Vec::new();
    for _ in 0..WALLETS {
        wallets.push(app.funded_wallet(FUNDING).await);
    }
    let wallets = Arc::new(wallets);

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|n| {
            tokio::spawn(worker(
                app.clone(),
                n,
                wallets.clone(),
                stop.clone(),
                answered.clone(),
            ))
        })
        .collect();
    let counter = &*answered;
    wait_until(|| async move { counter.load(Ordering::SeqCst) >= WARM_UP }).await;

    // Hold the wallets' rows: the batch being written waits for them, so every worker's
    // request is stuck inside the server. The in-flight gauge says when all of them are.
    let db = app.db().await;
    let mut lock = db.begin().await.unwrap();
    sqlx::query("SELECT id FROM wallets WHERE id = ANY($1) FOR UPDATE")
        .bind(wallets.as_slice())
        .fetch_all(&mut *lock)
        .await
        .unwrap();
    let admin = server.admin_addr();
    wait_until(|| async move {
        scrape(admin)
            .await
            .sum("wallet_http_requests_in_flight", &[])
            == WORKERS as f64
    })
    .await;

    stop.store(true, Ordering::SeqCst);
    server.signal("TERM");
    // Shutdown has begun once the listener is closed; the requests are still held.
    let addr = server.addr();
    wait_until(|| async move { tokio::net::TcpStream::connect(addr).await.is_err() }).await;
    lock.commit().await.unwrap();

    let mut sent = Vec::new();
    for worker in workers {
        sent.extend(worker.await.unwrap());
    }
    let status = server.exit_status().await;
    assert!(status.success(), "exit status {status}");
    assert!(
        server
            .output()
            .iter()
            .any(|line| line.contains("\"message\":\"shut down\"")),
        "the server logged its shutdown"
    );

    // Every request was sent before the signal (the workers were all held up when it came),
    // and every one got a real answer.
    assert!(sent.len() >= WARM_UP + WORKERS);
    let mut expected: HashMap<Uuid, u64> = wallets.iter().map(|&w| (w, FUNDING)).collect();
    let mut answers = HashMap::new();
    for request in &sent {
        let (status, body) = request
            .answer
            .as_ref()
            .unwrap_or_else(|error| panic!("request {} got no answer: {error}", request.id));
        let stored_status = match *status {
            StatusCode::OK => {
                let balance = expected.get_mut(&request.wallet).unwrap();
                if request.deposit {
                    *balance += request.amount;
                } else {
                    *balance -= request.amount;
                }
                "APPLIED"
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["code"], "INSUFFICIENT_FUNDS");
                "REJECTED"
            }
            other => panic!("request {} answered {other}: {body}", request.id),
        };
        answers.insert(request.id, (stored_status, request.amount));
    }

    // Every acknowledged operation is in the database, as acknowledged, and nothing else.
    let rows = sqlx::query(
        "SELECT id, status, amount FROM operations WHERE wallet_id = ANY($1) AND id = ANY($2)",
    )
    .bind(wallets.as_slice())
    .bind(answers.keys().copied().collect::<Vec<_>>())
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        answers.len(),
        "every acknowledged operation is stored"
    );
    for row in rows {
        let id: Uuid = row.get("id");
        let (status, amount) = answers[&id];
        assert_eq!(row.get::<String, _>("status"), status, "operation {id}");
        assert_eq!(row.get::<i64, _>("amount"), amount as i64, "operation {id}");
    }
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM operations WHERE wallet_id = ANY($1)")
            .bind(wallets.as_slice())
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        stored as usize,
        answers.len() + WALLETS,
        "funding plus the load"
    );
    for (wallet, balance) in expected {
        let (stored,): (i64,) = sqlx::query_as("SELECT balance FROM wallets WHERE id = $1")
            .bind(wallet)
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(stored as u64, balance, "wallet {wallet}");
    }
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn sigint_stops_an_idle_server_with_exit_status_0() {
    let mut server = ServerProcess::start(&[]).await;
    let app = server.app();
    app.funded_wallet(5).await;
    server.signal("INT");
    let status = server.exit_status().await;
    assert!(status.success(), "exit status {status}");
}
