//! The admin listener: Prometheus metrics that follow the traffic, and CPU profiles.
//!
//! The metrics recorder is process-wide, so every test of this binary that runs beside these
//! (each in-process app) adds to the same counters: they assert that numbers grew by at least
//! what they caused.

use crate::helpers::metrics::{Metrics, scrape};
use crate::helpers::{MAX_MONEY, TestApp, spawn_app, spawn_app_with, transfer_body};
use pprof::protos::Message;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

const DEPOSITS: usize = 20;

fn grew(before: &Metrics, after: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

#[tokio::test]
async fn metrics_follow_requests_and_ledger_batches() {
    let app = spawn_app().await;
    let before = scrape(app.admin_addr).await;

    let wallet = Uuid::new_v4();
    for _ in 0..DEPOSITS {
        assert_eq!(app.deposit(wallet, 1).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.withdraw(wallet, 1000).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(app.balance(wallet).await, DEPOSITS as u64);
    assert_eq!(
        app.get("/no/such/path").await.status(),
        StatusCode::NOT_FOUND
    );

    let after = scrape(app.admin_addr).await;
    let n = DEPOSITS as f64;
    let wallet_route = [("method", "POST"), ("route", "/api/v1/wallet")];
    let ok = [wallet_route[0], wallet_route[1], ("status", "200")];
    assert!(grew(&before, &after, "wallet_http_requests_total", &ok) >= n);
    assert!(
        grew(
            &before,
            &after,
            "wallet_http_request_duration_seconds_count",
            &ok
        ) >= n
    );
    assert!(
        grew(
            &before,
            &after,
            "wallet_http_request_duration_seconds_sum",
            &ok
        ) > 0.0
    );
    let conflict = [wallet_route[0], wallet_route[1], ("status", "409")];
    assert!(grew(&before, &after, "wallet_http_requests_total", &conflict) >= 1.0);
    let read = [
        ("method", "GET"),
        ("route", "/api/v1/wallets/{walletId}"),
        ("status", "200"),
    ];
    assert!(grew(&before, &after, "wallet_http_requests_total", &read) >= 1.0);
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert!(grew(&before, &after, "wallet_http_requests_total", &unmatched) >= 1.0);

    let applied = [("type", "DEPOSIT"), ("outcome", "applied")];
    assert!(grew(&before, &after, "wallet_operations_total", &applied) >= n);
    let rejected = [("type", "WITHDRAW"), ("outcome", "insufficient_funds")];
    assert!(grew(&before, &after, "wallet_operations_total", &rejected) >= 1.0);

    // Every decided operation was committed in some batch.
    assert!(grew(&before, &after, "wallet_ledger_batch_size_sum", &[]) >= n + 1.0);
    assert!(grew(&before, &after, "wallet_ledger_batch_size_count", &[]) >= 1.0);
    assert!(
        grew(
            &before,
            &after,
            "wallet_ledger_commit_duration_seconds_count",
            &[]
        ) >= 1.0
    );
    assert!(
        grew(
            &before,
            &after,
            "wallet_ledger_commit_duration_seconds_sum",
            &[]
        ) > 0.0
    );

    for series in [
        "wallet_ledger_retries_total",
        "wallet_ledger_queue_depth",
        "wallet_http_requests_in_flight",
    ] {
        assert!(after.has(series), "{series} is exported");
    }
    // The read pool served the balance read, so it holds a connection.
    let pool = after.sum("wallet_db_pool_connections", &[("state", "idle")])
        + after.sum("wallet_db_pool_connections", &[("state", "in_use")]);
    assert!(pool >= 1.0);
}

async fn writer_connections(app: &TestApp) -> i64 {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = 'wallet-writer' AND datname = current_database()",
    )
    .fetch_one(&app.db().await)
    .await
    .unwrap();
    count
}

#[tokio::test]
async fn transfers_are_counted_by_outcome_like_deposits_and_withdrawals() {
    let app = spawn_app().await;
    let before = scrape(app.admin_addr).await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);
    let full = app.funded_wallet(MAX_MONEY).await;
    let id = Uuid::new_v4();
    let requests = [
        (
            "applied",
            transfer_body(from, to, 1, Some(id)),
            StatusCode::OK,
        ),
        (
            "replayed",
            transfer_body(from, to, 1, Some(id)),
            StatusCode::OK,
        ),
        (
            "insufficient_funds",
            transfer_body(from, to, 100, None),
            StatusCode::CONFLICT,
        ),
        (
            "balance_limit_exceeded",
            transfer_body(from, full, 1, None),
            StatusCode::CONFLICT,
        ),
        (
            "wallet_not_found",
            transfer_body(from, Uuid::new_v4(), 1, None),
            StatusCode::NOT_FOUND,
        ),
        (
            "idempotency_key_reused",
            transfer_body(from, to, 2, Some(id)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (outcome, body, status) in &requests {
        assert_eq!(app.transfer(body).await.status(), *status, "{outcome}");
    }

    let after = scrape(app.admin_addr).await;
    for (outcome, _, _) in &requests {
        let labels = [("type", "TRANSFER"), ("outcome", *outcome)];
        assert!(
            grew(&before, &after, "wallet_operations_total", &labels) >= 1.0,
            "wallet_operations_total{{type=\"TRANSFER\", outcome=\"{outcome}\"}}"
        );
    }
}

#[tokio::test]
async fn a_batch_retried_after_losing_its_connection_is_counted() {
    let app = spawn_app_with(&["--shards", "1"]).await;
    // The first deposit into a wallet is decided on its locked funds, on the writer's first
    // connection; the second on the funds the writer remembers, on its pipelined one. Both
    // connections are lost below.
    let wallet = app.funded_wallet(10).await;
    assert_eq!(app.deposit(wallet, 1).await.status(), StatusCode::OK);
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'wallet-writer' AND datname = current_database()",
    )
    .execute(&app.db().await)
    .await
    .unwrap();
    while writer_connections(&app).await > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // A wallet new to the writer: its deposit goes out on the lost first connection.
    let fresh = app.funded_wallet(0).await;
    let before = scrape(app.admin_addr).await;
    assert_eq!(app.deposit(fresh, 1).await.status(), StatusCode::OK);
    let after = scrape(app.admin_addr).await;
    assert!(grew(&before, &after, "wallet_ledger_retries_total", &[]) >= 1.0);
    assert_eq!(app.balance(fresh).await, 1);
    // The remembered wallet's next deposit finds its pipelined connection lost too.
    assert_eq!(app.deposit(wallet, 1).await.status(), StatusCode::OK);
    assert_eq!(app.balance(wallet).await, 12);
}

/// Keeps a core busy in a function the profile can name, until `stop`.
#[inline(never)]
fn burn_cpu(stop: &AtomicBool) -> u64 {
    let mut x = 1_u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    x
}

#[tokio::test]
async fn a_cpu_profile_is_served_in_pprof_format_and_as_a_flamegraph() {
    let app = spawn_app().await;
    let get = |path: &str| reqwest::get(app.admin_url(path));
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || burn_cpu(&stop))
    };

    let response = get("/debug/pprof/profile?seconds=1").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.unwrap();
    let profile = pprof::protos::Profile::parse_from_bytes(&bytes).expect("a pprof protobuf");
    assert!(!profile.sample_type.is_empty());
    assert!(profile.duration_nanos >= 1_000_000_000);

    let response = get("/debug/pprof/flamegraph?seconds=1").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml");
    let svg = response.text().await.unwrap();
    assert!(svg.contains("<svg"));
    assert!(
        svg.contains("burn_cpu"),
        "the busy function is in the flamegraph"
    );
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
}

#[tokio::test]
async fn a_profile_of_a_bad_duration_is_refused() {
    let app = spawn_app().await;
    for query in ["seconds=0", "seconds=301", "seconds=x", "minutes=1"] {
        let response = reqwest::get(app.admin_url(&format!("/debug/pprof/profile?{query}")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

/// The metric names a PromQL expression reads (`wallet_...`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("wallet_") {
        let name: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[start + name.len()..];
        names.push(name);
    }
    names
}

#[tokio::test]
async fn the_grafana_dashboard_only_queries_metrics_the_service_exports() {
    let app = spawn_app().await;
    let wallet = app.funded_wallet(3).await;
    assert_eq!(app.balance(wallet).await, 3);
    let exported = scrape(app.admin_addr).await;

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../monitoring/grafana/dashboards/wallet.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                assert!(exported.has(&name), "{name} in {:?}", panel["title"]);
                queried += 1;
            }
        }
    }
    assert!(queried > 0);
}
