//! Many requests on ONE wallet, or transfers among a few, or holds placed and resolved, at
//! once: every balance exact, money conserved, every hold resolved exactly once, no 5xx.

use crate::helpers::database::on_citus;
use crate::helpers::metrics::scrape;
use crate::helpers::{
    Reply, ServerProcess, TestApp, eventually, kind, operation_body, pending, spawn_app_with,
    timestamp, transfer_body,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

/// A request deadline far beyond any of these loads: they test exactness, and on a loaded
/// machine (other tests, a shared database server) a queue of single-row transactions may
/// wait longer than the default deadline, whose 503s other tests cover.
const PATIENT: [&str; 2] = ["--request-timeout-ms", "60000"];

/// A bound on a hang, not a timing expectation.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Sends `count` copies of a request at once and returns their statuses.
async fn concurrently<F, Fut>(count: usize, send: F) -> Vec<StatusCode>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = reqwest::Response> + Send + 'static,
{
    let tasks: JoinSet<_> = (0..count).map(send).collect();
    tasks.join_all().await.iter().map(|r| r.status()).collect()
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_deposits_sum_exactly() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let wallet = app.funded_wallet(0).await;
    let statuses = concurrently(1000, |i| {
        let app = app.clone();
        async move { app.deposit(wallet, i as u64 + 1).await }
    })
    .await;
    assert_eq!(count(&statuses, StatusCode::OK), 1000);
    assert_eq!(app.balance(wallet).await, 1000 * 1001 / 2);
    assert_eq!(app.history(wallet).await.len(), 1000);
    app.assert_ledger_consistent().await;
}

/// Sends `withdrawals` withdrawals of `amount` at once from a wallet holding `balance` (a
/// multiple of `amount`): exactly `balance / amount` succeed, the rest are refused with 409,
/// and the wallet ends empty.
async fn racing_withdrawals_empty_the_wallet_exactly(
    app: TestApp,
    balance: u64,
    withdrawals: usize,
    amount: u64,
) {
    let app = Arc::new(app);
    let wallet = app.funded_wallet(balance).await;
    let statuses = concurrently(withdrawals, |_| {
        let app = app.clone();
        async move { app.withdraw(wallet, amount).await }
    })
    .await;
    let succeeded = (balance / amount) as usize;
    assert_eq!(count(&statuses, StatusCode::OK), succeeded, "{statuses:?}");
    assert_eq!(
        count(&statuses, StatusCode::CONFLICT),
        withdrawals - succeeded
    );
    assert_eq!(app.balance(wallet).await, 0);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_withdrawals_of_50_from_100_exactly_two_succeed() {
    racing_withdrawals_empty_the_wallet_exactly(spawn_app_with(&PATIENT).await, 100, 3, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_withdrawals_of_1_from_100_exactly_100_succeed() {
    racing_withdrawals_empty_the_wallet_exactly(spawn_app_with(&PATIENT).await, 100, 200, 1).await;
}

/// Acknowledged deposits minus acknowledged withdrawals, over one worker's requests.
async fn mixed_worker(
    apps: Arc<Vec<TestApp>>,
    wallet: Uuid,
    worker: usize,
    requests: usize,
) -> i64 {
    let mut net = 0_i64;
    for i in 0..requests {
        let app = &apps[(worker + i) % apps.len()];
        let amount = (worker * 7 + i * 13) % 50 + 1;
        let deposit = (worker + i).is_multiple_of(2);
        let body = operation_body(wallet, kind(deposit), amount as u64, Some(Uuid::new_v4()));
        let response = app.operation(&body).await;
        match response.status() {
            StatusCode::OK if deposit => net += amount as i64,
            StatusCode::OK => net -= amount as i64,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected status {other}"),
        }
    }
    net
}

/// Runs 5000 mixed requests from 50 workers against `apps` (round robin) on one wallet and
/// checks balance = initial + acknowledged deposits - acknowledged withdrawals = history.
async fn mixed_load_is_exact(apps: Vec<TestApp>) {
    let initial = 1_000;
    let wallet = apps[0].funded_wallet(initial).await;
    let apps = Arc::new(apps);
    let workers: JoinSet<_> = (0..50)
        .map(|w| mixed_worker(apps.clone(), wallet, w, 100))
        .collect();
    let net: i64 = workers.join_all().await.into_iter().sum();

    let expected = (initial as i64 + net) as u64;
    assert_eq!(apps[0].assert_history_adds_up(wallet).await, expected);
    assert_eq!(
        apps[0].history(wallet).await.len(),
        5001,
        "every request and the funding are recorded"
    );
    apps[0].assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_mixed_requests_from_50_workers_are_exact_with_no_5xx() {
    mixed_load_is_exact(vec![spawn_app_with(&PATIENT).await]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_stay_exact_on_one_wallet() {
    let first = spawn_app_with(&PATIENT).await;
    let second = first.spawn_beside(&PATIENT).await;
    mixed_load_is_exact(vec![first, second]).await;
}

/// Each writer decides on the funds its own last commit left in a wallet, without reading
/// them first; another instance writing the wallet meanwhile must not make it decide on
/// stale funds, whichever way they are stale: too much, too little, or held. (One wallet
/// each: a wallet found changed is then read for a while rather than remembered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_changed_by_another_instance_is_decided_on_its_stored_funds() {
    let first = spawn_app_with(&PATIENT).await;
    let second = first.spawn_beside(&PATIENT).await;
    let before = scrape(first.admin_addr).await;

    // `first` last saw 100; it is 0 now.
    let emptied = first.funded_wallet(100).await;
    assert_eq!(second.withdraw(emptied, 100).await.status(), StatusCode::OK);
    let refused = Reply::of(first.withdraw(emptied, 50).await).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
    // `first` last saw 10; it is 210 now.
    let topped_up = first.funded_wallet(10).await;
    assert_eq!(
        second.deposit(topped_up, 200).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        first.withdraw(topped_up, 150).await.status(),
        StatusCode::OK
    );
    // `first` last saw 30 of its 50 held; nothing is held now.
    let released = first.funded_wallet(50).await;
    let hold = placed_hold(&first, released, None, 30).await;
    assert_eq!(second.void_hold(hold).await.status, StatusCode::OK);
    assert_eq!(first.withdraw(released, 50).await.status(), StatusCode::OK);

    // Each of the three was decided on remembered funds first (the metrics are the
    // process's, shared with the tests running beside this one: at least), except on Citus,
    // where every batch locks and reads its wallets first.
    let after = scrape(first.admin_addr).await;
    let unremembered = "wallet_ledger_unremembered_total";
    let grew = after.sum(unremembered, &[]) - before.sum(unremembered, &[]);
    if on_citus() {
        assert_eq!(grew, 0.0);
    } else {
        assert!(grew >= 3.0, "{grew}");
    }
    for (wallet, balance) in [(emptied, 0), (topped_up, 60), (released, 0)] {
        assert_eq!(first.funds(wallet).await, (balance, 0, balance));
        assert_eq!(first.assert_history_adds_up(wallet).await, balance);
    }
    first.assert_ledger_consistent().await;
}

/// A batch sent while the one before it still commits is decided on the funds that one will
/// leave. When that one fails (here another session deposited into the wallet under it, as
/// another instance would), the next fails its own check too, and both are decided again on
/// the stored funds, in order. Plain PostgreSQL only: on Citus no batch is pipelined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_decided_on_one_that_failed_is_decided_again_after_it() {
    if on_citus() {
        // Where every batch locks and reads first, no batch is decided on another's outcome.
        eprintln!("skipped: batches are not pipelined on Citus");
        return;
    }
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let wallet = app.funded_wallet(100).await;
    // From its second deposit on, the writer decides this wallet's batches on remembered
    // funds, pipelined.
    assert_eq!(app.deposit(wallet, 1).await.status(), StatusCode::OK);
    let db = app.db().await;
    let mut other = db.begin().await.unwrap();
    sqlx::query("UPDATE wallets SET balance = balance + 5 WHERE id = $1")
        .bind(wallet)
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO operations (id, wallet_id, kind, amount, status, balance_after, \
         available_after) VALUES ($1, $2, 'DEPOSIT', 5, 'APPLIED', 106, 106)",
    )
    .bind(Uuid::new_v4())
    .bind(wallet)
    .execute(&mut *other)
    .await
    .unwrap();

    let deposit = |amount| {
        let app = app.clone();
        tokio::spawn(async move { Reply::of(app.deposit(wallet, amount).await).await })
    };
    let first = deposit(10);
    eventually(
        "the first deposit waits for the wallet's lock",
        LOCK_WAIT,
        async || {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wallet-writer' \
             AND datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&db)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        },
    )
    .await;
    // Time for the second to reach the writer, which sends it at once behind the first (had
    // it come later, it would be decided after the first failed, and this test shows less).
    let second = deposit(20);
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.commit().await.unwrap();

    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.json()["balance"], 116);
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.json()["balance"], 136);
    assert_eq!(app.assert_history_adds_up(wallet).await, 136);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transaction_per_request_mode_is_exact_too() {
    let app = spawn_app_with(&[PATIENT[0], PATIENT[1], "--max-batch", "1"]).await;
    racing_withdrawals_empty_the_wallet_exactly(app, 100, 200, 1).await;
}

// ---------------------------------------------------------------- transfers

/// `PATIENT` for a server process, with the in-process apps' writers and pool.
const PATIENT_PROCESS: [&str; 6] = [
    PATIENT[0],
    PATIENT[1],
    "--shards",
    "2",
    "--db-pool-size",
    "4",
];

/// A transfer with a new id; its status, which must be a decision (200 or 409).
async fn decided_transfer(app: &TestApp, from: Uuid, to: Uuid, amount: u64) -> StatusCode {
    let body = transfer_body(from, to, amount, Some(Uuid::new_v4()));
    let answer = Reply::of(app.transfer(&body).await).await;
    assert!(
        [StatusCode::OK, StatusCode::CONFLICT].contains(&answer.status),
        "transfer {body}: {} {}",
        answer.status,
        answer.text()
    );
    answer.status
}

/// `count` wallets holding `balance` each.
async fn funded_wallets(app: &TestApp, count: usize, balance: u64) -> Vec<Uuid> {
    let mut wallets = Vec::with_capacity(count);
    for _ in 0..count {
        wallets.push(app.funded_wallet(balance).await);
    }
    wallets
}

/// Random requests on `wallets`, most of them transfers between two of them, some deposits
/// and withdrawals; returns acknowledged deposits minus acknowledged withdrawals.
async fn transfer_worker(app: Arc<TestApp>, wallets: Arc<Vec<Uuid>>, seed: u64) -> i64 {
    let mut random = SmallRng::seed_from_u64(seed);
    let mut net = 0;
    for _ in 0..25 {
        let n = wallets.len();
        let first = random.random_range(0..n);
        let amount = random.random_range(1..=60);
        match random.random_range(0..10) {
            0 | 1 => {
                let deposit = random.random_bool(0.5);
                let body = operation_body(wallets[first], kind(deposit), amount, None);
                let (status, signed) = (app.operation(&body).await.status(), amount as i64);
                match status {
                    StatusCode::OK if deposit => net += signed,
                    StatusCode::OK => net -= signed,
                    StatusCode::CONFLICT if !deposit => {}
                    other => panic!("{body}: {other}"),
                }
            }
            _ => {
                let to = wallets[(first + random.random_range(1..n)) % n];
                decided_transfer(&app, wallets[first], to, amount).await;
            }
        }
    }
    net
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_transfers_among_40_wallets_from_32_workers_conserve_money() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let initial = 100;
    let wallets = Arc::new(funded_wallets(&app, 40, initial).await);

    let workers: JoinSet<_> = (0..32)
        .map(|seed| transfer_worker(app.clone(), wallets.clone(), seed))
        .collect();
    let net: i64 = workers.join_all().await.into_iter().sum();

    let mut total = 0;
    for &wallet in wallets.iter() {
        total += app.assert_history_adds_up(wallet).await as i64;
    }
    assert_eq!(
        total,
        40 * initial as i64 + net,
        "sum of balances == deposits - withdrawals"
    );
    app.assert_ledger_consistent().await;
}

/// Sends 200 transfers of 1 to 7 between two wallets holding 100 each, half each way, all at
/// once, spread over `apps` (round robin): every one decided, and each balance is exactly
/// what the applied ones add up to.
async fn crossing_transfers_are_exact(apps: Vec<TestApp>) {
    let apps = Arc::new(apps);
    let (a, b) = (
        apps[0].funded_wallet(100).await,
        apps[0].funded_wallet(100).await,
    );
    let tasks: JoinSet<_> = (0..200_usize)
        .map(|i| {
            let apps = apps.clone();
            // Both directions go through every instance.
            let app_index = (i / 2) % apps.len();
            let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
            let amount = (i % 7 + 1) as i64;
            async move {
                let status = decided_transfer(&apps[app_index], from, to, amount as u64).await;
                let moved = if status == StatusCode::OK { amount } else { 0 };
                if from == a { -moved } else { moved }
            }
        })
        .collect();
    let into_a: i64 = tasks.join_all().await.into_iter().sum();

    let expected_a = (100 + into_a) as u64;
    assert_eq!(apps[0].assert_history_adds_up(a).await, expected_a);
    assert_eq!(apps[0].assert_history_adds_up(b).await, 200 - expected_a);
    apps[0].assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_transfers_both_ways_between_two_wallets_are_exact() {
    crossing_transfers_are_exact(vec![spawn_app_with(&PATIENT).await]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_processes_on_one_database_stay_exact_under_crossing_transfers() {
    let first = ServerProcess::start(&PATIENT_PROCESS).await;
    let second = ServerProcess::start_on(first.database_url(), &PATIENT_PROCESS).await;
    crossing_transfers_are_exact(vec![first.app(), second.app()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_payers_paying_one_merchant_at_once_are_exact() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let merchant = app.funded_wallet(0).await;
    let payers = funded_wallets(&app, 50, 10).await;

    // Each payer sends two payments of 6 at once: exactly one fits in its 10.
    let statuses = concurrently(100, |i| {
        let (app, payer) = (app.clone(), payers[i / 2]);
        async move { app.transfer(&transfer_body(payer, merchant, 6, None)).await }
    })
    .await;

    assert_eq!(count(&statuses, StatusCode::OK), 50, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::CONFLICT), 50);
    assert_eq!(app.assert_history_adds_up(merchant).await, 300);
    assert_eq!(app.history(merchant).await.len(), 50);
    for &payer in &payers {
        assert_eq!(app.assert_history_adds_up(payer).await, 4);
    }
    app.assert_ledger_consistent().await;
}

// ---------------------------------------------------------------- holds

/// How long a test waits for a hold to expire: due within about a second of its `expiresAt`;
/// this bounds a hang on a loaded machine.
const EXPIRY_LIMIT: Duration = Duration::from_secs(15);

/// A hold with a new id, withdrawn from `from` or, with `to`, transferred; its id and the
/// answer.
async fn hold(
    app: &TestApp,
    from: Uuid,
    to: Option<Uuid>,
    amount: u64,
    timeout: Option<u64>,
) -> (Uuid, Reply) {
    let id = Uuid::new_v4();
    let answer = match to {
        None => {
            let body = operation_body(from, "WITHDRAW", amount, Some(id));
            app.operation(&pending(body, timeout)).await
        }
        Some(to) => {
            let body = transfer_body(from, to, amount, Some(id));
            app.transfer(&pending(body, timeout)).await
        }
    };
    (id, Reply::of(answer).await)
}

/// A hold that must be placed; its id.
async fn placed_hold(app: &TestApp, from: Uuid, to: Option<Uuid>, amount: u64) -> Uuid {
    let (id, answer) = hold(app, from, to, amount, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_holds_of_10_on_500_exactly_50_are_placed() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let wallet = app.funded_wallet(500).await;

    let tasks: JoinSet<Reply> = (0..100)
        .map(|_| {
            let app = app.clone();
            async move { hold(&app, wallet, None, 10, None).await.1 }
        })
        .collect();
    let answers = tasks.join_all().await;

    let mut available: Vec<u64> = Vec::new();
    let mut refused = 0;
    for answer in &answers {
        let body = answer.json();
        match (
            answer.status,
            body["status"].as_str(),
            body["code"].as_str(),
        ) {
            (StatusCode::OK, Some("PENDING"), _) => available.extend(body["available"].as_u64()),
            (StatusCode::CONFLICT, _, Some("INSUFFICIENT_FUNDS")) => refused += 1,
            _ => panic!("{} {}", answer.status, answer.text()),
        }
    }
    available.sort_unstable();
    // One after the other: each placed hold left 10 less, down to exactly 0.
    let expected: Vec<u64> = (0..50).map(|n| n * 10).collect();
    assert_eq!(available, expected, "available after each placed hold");
    assert_eq!(refused, 50);
    assert_eq!(app.funds(wallet).await, (500, 500, 0));
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_resolved_among_other_requests_on_one_wallet_stay_in_the_history_in_decision_order() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let wallet = app.funded_wallet(10_000).await;

    for round in 0..30 {
        let (confirmed, voided) = (
            placed_hold(&app, wallet, None, 10).await,
            placed_hold(&app, wallet, None, 10).await,
        );
        // At once, so that they share the wallet's batches in any order.
        let (confirm, void, withdrawal, held) = tokio::join!(
            app.confirm_hold(confirmed, None),
            app.void_hold(voided),
            app.withdraw(wallet, 5),
            hold(&app, wallet, None, 7, None),
        );
        let withdrawal = Reply::of(withdrawal).await;
        for answer in [&confirm, &void, &withdrawal, &held.1] {
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "round {round}: {}",
                answer.text()
            );
        }
    }

    app.assert_history_adds_up(wallet).await;
    app.assert_ledger_consistent().await;
}

/// The two resolutions of one hold that race in a round, in turn.
const RACES: [(&str, &str); 3] = [
    ("confirm", "void"),
    ("confirm", "confirm"),
    ("void", "void"),
];

/// `"confirm"` (all of it) or `"void"` of `hold`.
async fn resolve(app: &TestApp, hold: Uuid, action: &str) -> Reply {
    match action {
        "confirm" => app.confirm_hold(hold, None).await,
        _ => app.void_hold(hold).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_racing_a_void_of_one_hold_exactly_one_wins() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let (from, to) = (app.funded_wallet(10_000).await, app.funded_wallet(0).await);
    let rounds = 30;
    let mut holds = Vec::new();
    for round in 0..rounds {
        // Every other hold is a pending transfer.
        let destination = (round % 2 == 1).then_some(to);
        holds.push((round, placed_hold(&app, from, destination, 10).await));
    }

    // Every round at once, the two requests of each round at once.
    let tasks: JoinSet<_> = holds
        .into_iter()
        .map(|(round, hold)| {
            let app = app.clone();
            let (first, second) = RACES[round % RACES.len()];
            async move {
                let answers = tokio::join!(resolve(&app, hold, first), resolve(&app, hold, second));
                (round, hold, answers)
            }
        })
        .collect();
    let (mut withdrawn, mut transferred) = (0, 0);
    for (round, hold, (a, b)) in tasks.join_all().await {
        let (first, second) = RACES[round % RACES.len()];
        let winner = if first == second {
            // The same request twice: one decision, replayed to the other.
            for answer in [&a, &b] {
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
                assert_eq!(answer.text(), a.text(), "one body");
            }
            let originals = [&a, &b].iter().filter(|r| r.replayed().is_none()).count();
            assert_eq!(originals, 1, "round {round}: exactly one is not a replay");
            a.json()
        } else {
            let (won, lost) = if a.status == StatusCode::OK {
                (&a, &b)
            } else {
                (&b, &a)
            };
            assert_eq!(won.status, StatusCode::OK, "round {round}: {}", won.text());
            let problem = lost.json();
            assert_eq!(
                (lost.status, problem["code"].as_str()),
                (StatusCode::CONFLICT, Some("HOLD_NOT_PENDING")),
                "round {round}: {problem}"
            );
            won.json()
        };
        let record = app.hold(hold).await.json();
        assert_eq!(
            record["status"], winner["status"],
            "round {round}: {record}"
        );
        if record["status"] == "CONFIRMED" {
            if round % 2 == 1 {
                transferred += 10;
            } else {
                withdrawn += 10;
            }
        }
    }
    let left = 10_000 - withdrawn - transferred;
    assert_eq!(app.funds(from).await, (left, 0, left));
    assert_eq!(app.funds(to).await, (transferred, 0, transferred));
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_racing_the_expiry_of_its_hold_has_exactly_one_outcome() {
    let app = Arc::new(spawn_app_with(&PATIENT).await);
    let wallet = app.funded_wallet(1_000).await;

    // Each confirm is sent at its hold's expiresAt plus an offset, from 200 ms before to
    // 200 ms after.
    let tasks: JoinSet<_> = (-5..=5_i64)
        .map(|step| {
            let app = app.clone();
            async move {
                let (id, answer) = hold(&app, wallet, None, 10, Some(1)).await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
                let expires_at = timestamp(&answer.json()["expiresAt"]);
                let send_at = expires_at + chrono::TimeDelta::milliseconds(40 * step);
                let wait = (send_at - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                (id, expires_at, app.confirm_hold(id, None).await)
            }
        })
        .collect();

    let mut confirmed = 0;
    for (id, expires_at, answer) in tasks.join_all().await {
        let body = answer.json();
        match (answer.status, body["code"].as_str()) {
            (StatusCode::OK, _) => {
                assert_eq!(body["status"], "CONFIRMED", "{body}");
                assert!(
                    timestamp(&body["resolvedAt"]) < expires_at,
                    "confirmed before it expired: {body}"
                );
                confirmed += 10;
            }
            (StatusCode::CONFLICT, Some("HOLD_NOT_PENDING")) => {
                app.wait_for_hold_status(id, "EXPIRED", EXPIRY_LIMIT).await;
            }
            _ => panic!("hold {id}: {} {}", answer.status, answer.text()),
        }
        // Whichever won, it stays the outcome.
        let record = app.hold(id).await.json();
        let outcome = if answer.status == StatusCode::OK {
            "CONFIRMED"
        } else {
            "EXPIRED"
        };
        assert_eq!(record["status"], outcome, "{record}");
    }
    let left = 1_000 - confirmed;
    assert_eq!(app.funds(wallet).await, (left, 0, left));
    app.assert_ledger_consistent().await;
}

/// How a client saw one of its holds end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Confirmed(u64),
    Voided,
    /// Left to its timeout, or too late to confirm or void.
    Expired,
}

/// Places holds on `wallets`, some with a timeout of one second, and confirms (all or part),
/// voids, or leaves each timed one to expire; returns each placed hold with its outcome.
async fn hold_worker(
    app: Arc<TestApp>,
    wallets: Arc<Vec<Uuid>>,
    seed: u64,
) -> Vec<(Uuid, Outcome)> {
    let mut random = SmallRng::seed_from_u64(seed);
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let n = wallets.len();
        let first = random.random_range(0..n);
        let to = random
            .random_bool(0.5)
            .then(|| wallets[(first + random.random_range(1..n)) % n]);
        let amount = random.random_range(1..=30);
        let timeout = random.random_bool(0.4).then_some(1);
        let (id, answer) = hold(&app, wallets[first], to, amount, timeout).await;
        match (answer.status, answer.json()["code"].as_str()) {
            (StatusCode::OK, _) => {}
            (StatusCode::CONFLICT, Some("INSUFFICIENT_FUNDS")) => continue,
            _ => panic!("hold {id}: {} {}", answer.status, answer.text()),
        }
        let (answer, outcome) = match random.random_range(0..4) {
            0 | 1 => {
                let part = random.random_range(1..=amount);
                let body = json!({ "amount": part });
                (
                    app.confirm_hold(id, Some(&body)).await,
                    Outcome::Confirmed(part),
                )
            }
            3 if timeout.is_some() => {
                outcomes.push((id, Outcome::Expired));
                continue;
            }
            _ => (app.void_hold(id).await, Outcome::Voided),
        };
        let outcome = match (answer.status, answer.json()["code"].as_str()) {
            (StatusCode::OK, _) => outcome,
            // Sent after a second on a loaded machine: the hold expired first.
            (StatusCode::CONFLICT, Some("HOLD_NOT_PENDING")) if timeout.is_some() => {
                Outcome::Expired
            }
            _ => panic!("hold {id}: {} {}", answer.status, answer.text()),
        };
        outcomes.push((id, outcome));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_processes_resolve_every_hold_on_shared_wallets_exactly_once() {
    let first = ServerProcess::start(&PATIENT_PROCESS).await;
    let second = ServerProcess::start_on(first.database_url(), &PATIENT_PROCESS).await;
    let apps = [Arc::new(first.app()), Arc::new(second.app())];
    let initial = 300;
    let wallets = Arc::new(funded_wallets(&apps[0], 4, initial).await);

    let workers: JoinSet<_> = (0..8)
        .map(|seed| hold_worker(apps[seed % 2].clone(), wallets.clone(), seed as u64))
        .collect();
    let outcomes: Vec<(Uuid, Outcome)> = workers.join_all().await.into_iter().flatten().collect();

    let app = &apps[0];
    let mut withdrawn = 0;
    for &(id, outcome) in &outcomes {
        let record = match outcome {
            Outcome::Expired => app.wait_for_hold_status(id, "EXPIRED", EXPIRY_LIMIT).await,
            _ => app.hold(id).await.json(),
        };
        let seen = match record["status"].as_str() {
            Some("CONFIRMED") => record["confirmedAmount"].as_u64().map(Outcome::Confirmed),
            Some("VOIDED") => Some(Outcome::Voided),
            Some("EXPIRED") => Some(Outcome::Expired),
            _ => None,
        };
        assert_eq!(seen, Some(outcome), "hold {id}: {record}");
        if let (Outcome::Confirmed(amount), None) = (outcome, record.get("toWalletId")) {
            withdrawn += amount;
        }
    }
    assert!(
        outcomes.iter().any(|(_, o)| *o == Outcome::Expired),
        "some holds expired: {outcomes:?}"
    );
    let mut total = 0;
    for &wallet in wallets.iter() {
        let (balance, held, available) = app.funds(wallet).await;
        assert_eq!(
            (held, available),
            (0, balance),
            "wallet {wallet}: every hold resolved"
        );
        total += app.assert_history_adds_up(wallet).await;
    }
    assert_eq!(
        total,
        4 * initial - withdrawn,
        "only withdrawals take money out"
    );
    app.assert_ledger_consistent().await;
}
