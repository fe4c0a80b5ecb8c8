//! What only Citus has: the tables the service distributes itself, the shard it expects each
//! wallet on, and ids kept unique across shards. Each test runs when the tests run on a
//! Citus cluster (`scripts/citus-tests.sh`); on plain PostgreSQL it says it was skipped.

use crate::helpers::database::on_citus;
use crate::helpers::{TestApp, operation_body, spawn_app};
use reqwest::StatusCode;
use sqlx::postgres::PgConnectOptions;
use std::collections::HashMap;
use std::str::FromStr;
use uuid::Uuid;
use wallet_server::domain::WalletId;
use wallet_server::store::citus::{self, ShardMap};

fn skipped() -> bool {
    if !on_citus() {
        eprintln!("skipped: the tests run on plain PostgreSQL (see scripts/citus-tests.sh)");
    }
    !on_citus()
}

/// A server on a new database, and where it expects each wallet; `None` off Citus.
async fn app_with_shards() -> Option<(TestApp, ShardMap)> {
    if skipped() {
        return None;
    }
    let app = spawn_app().await;
    let options = PgConnectOptions::from_str(&app.database_url).unwrap();
    let (_, map) = citus::distribute(options).await.unwrap();
    Some((app, map.expect("on Citus")))
}

#[tokio::test]
async fn every_table_is_distributed_by_wallet_and_colocated_with_the_wallets() {
    if skipped() {
        return;
    }
    let app = spawn_app().await;
    let db = app.db().await;
    let tables: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT logicalrelid::text, column_to_column_name(logicalrelid, partkey), colocationid \
         FROM pg_dist_partition ORDER BY 1",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let by_table: HashMap<&str, &str> = tables
        .iter()
        .map(|(table, column, _)| (table.as_str(), column.as_str()))
        .collect();
    assert_eq!(
        by_table,
        HashMap::from([
            ("wallets", "id"),
            ("operations", "wallet_id"),
            ("transfers", "from_wallet_id"),
            ("holds", "wallet_id"),
            ("outbox", "wallet_id"),
            ("operation_ids", "id"),
        ])
    );
    assert!(
        tables.iter().all(|(_, _, group)| *group == tables[0].2),
        "one colocation group: {tables:?}"
    );
    // Money moves on the distributed tables: one deposit lands on its wallet's shard.
    let wallet = Uuid::new_v4();
    assert_eq!(app.deposit(wallet, 5).await.status(), StatusCode::OK);
    let stored: i64 = sqlx::query_scalar("SELECT balance FROM wallets WHERE id = $1")
        .bind(wallet)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 5);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn the_service_expects_each_wallet_on_the_shard_citus_puts_it() {
    let Some((app, map)) = app_with_shards().await else {
        return;
    };
    let db = app.db().await;
    let shards: Vec<i64> = sqlx::query_scalar(
        "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'wallets'::regclass \
         ORDER BY shardminvalue::int4",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(map.shards(), shards.len());
    let wallets: Vec<Uuid> = (0..500).map(|_| Uuid::new_v4()).collect();
    let placed: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT w, get_shard_id_for_distribution_column('wallets', w) FROM unnest($1::uuid[]) w",
    )
    .bind(&wallets)
    .fetch_all(&db)
    .await
    .unwrap();
    for (wallet, shard) in placed {
        assert_eq!(
            shards[map.shard_of(WalletId::from(wallet))],
            shard,
            "wallet {wallet}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_taken_on_another_shard_is_refused_even_when_both_arrive_at_once() {
    let Some((app, map)) = app_with_shards().await else {
        return;
    };
    // Two wallets on different shards (and so, with two writers, possibly on two writers).
    let first = Uuid::new_v4();
    let shard = map.shard_of(WalletId::from(first));
    let second = std::iter::repeat_with(Uuid::new_v4)
        .find(|w| map.shard_of(WalletId::from(*w)) != shard)
        .unwrap();
    for wallet in [first, second] {
        assert_eq!(app.deposit(wallet, 100).await.status(), StatusCode::OK);
    }
    // One after the other.
    let id = Uuid::new_v4();
    let taken = app
        .operation(&operation_body(first, "WITHDRAW", 1, Some(id)))
        .await;
    assert_eq!(taken.status(), StatusCode::OK);
    let reused = app
        .operation(&operation_body(second, "WITHDRAW", 1, Some(id)))
        .await;
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // At once, many times: exactly one of each pair is applied, the other refused.
    for _ in 0..20 {
        let id = Uuid::new_v4();
        let (on_first, on_second) = (
            operation_body(first, "WITHDRAW", 1, Some(id)),
            operation_body(second, "WITHDRAW", 1, Some(id)),
        );
        let (a, b) = tokio::join!(app.operation(&on_first), app.operation(&on_second));
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY],
            "id {id}"
        );
    }
    assert_eq!(
        app.balance(first).await + app.balance(second).await,
        200 - 21
    );
    app.assert_ledger_consistent().await;
}
