//! The stored ledger's invariants, checked with SQL behind the API. They hold whatever the
//! clients sent, so any test that moved money may ask for them:
//!
//! - every wallet's balance is its applied deposits and incoming transfers minus its applied
//!   withdrawals and outgoing transfers, and the `balance_after` of its newest applied entry;
//! - transfers conserve money: the sum of all balances is applied deposits minus applied
//!   withdrawals;
//! - an applied transfer has exactly one `TRANSFER_OUT` entry on its source and one
//!   `TRANSFER_IN` on its destination, both applied, with its amount and balances; a rejected
//!   one has only a rejected `TRANSFER_OUT`; no entry names a transfer that is not stored.

use sqlx::PgConnection;
use uuid::Uuid;

/// Every broken invariant, described; empty when the ledger is consistent.
pub async fn violations(db: &mut PgConnection) -> Vec<String> {
    let mut violations = Vec::new();
    balances_equal_their_history(db, &mut violations).await;
    money_is_conserved(db, &mut violations).await;
    transfers_have_both_legs_or_none(db, &mut violations).await;
    violations
}

async fn balances_equal_their_history(db: &mut PgConnection, violations: &mut Vec<String>) {
    let rows: Vec<(Uuid, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT w.id, w.balance,
                COALESCE((SELECT SUM(CASE WHEN kind IN ('DEPOSIT', 'TRANSFER_IN')
                                          THEN amount ELSE -amount END)
                          FROM operations o WHERE o.wallet_id = w.id AND status = 'APPLIED'), 0)::int8,
                (SELECT balance_after FROM operations o
                 WHERE o.wallet_id = w.id AND status = 'APPLIED' ORDER BY seq DESC LIMIT 1)
         FROM wallets w",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for (wallet, balance, net, newest) in rows {
        if balance != net || newest.unwrap_or(0) != balance {
            violations.push(format!(
                "wallet {wallet}: balance {balance}, applied history {net}, \
                 newest balance_after {newest:?}"
            ));
        }
    }
}

async fn money_is_conserved(db: &mut PgConnection, violations: &mut Vec<String>) {
    let (balances, net): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE((SELECT SUM(balance) FROM wallets), 0)::int8,
                COALESCE((SELECT SUM(CASE kind WHEN 'DEPOSIT' THEN amount ELSE -amount END)
                          FROM operations
                          WHERE status = 'APPLIED' AND kind IN ('DEPOSIT', 'WITHDRAW')), 0)::int8",
    )
    .fetch_one(&mut *db)
    .await
    .unwrap();
    if balances != net {
        violations.push(format!(
            "sum of balances {balances} != applied deposits - withdrawals {net}"
        ));
    }
}

async fn transfers_have_both_legs_or_none(db: &mut PgConnection, violations: &mut Vec<String>) {
    // Per transfer: its matching out leg, its matching in leg, and every entry naming it.
    let legs: Vec<(Uuid, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT t.id, t.status,
                (SELECT count(*) FROM operations o
                 WHERE o.transfer_id = t.id AND o.kind = 'TRANSFER_OUT' AND o.status = t.status
                   AND o.wallet_id = t.from_wallet_id AND o.counterparty_wallet_id = t.to_wallet_id
                   AND o.amount = t.amount AND o.balance_after = t.from_balance),
                (SELECT count(*) FROM operations o
                 WHERE o.transfer_id = t.id AND o.kind = 'TRANSFER_IN' AND o.status = 'APPLIED'
                   AND o.wallet_id = t.to_wallet_id AND o.counterparty_wallet_id = t.from_wallet_id
                   AND o.amount = t.amount AND o.balance_after = t.to_balance),
                (SELECT count(*) FROM operations o WHERE o.transfer_id = t.id)
         FROM transfers t",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for (transfer, status, out, into, all) in legs {
        let expected = if status == "APPLIED" {
            (1, 1, 2)
        } else {
            (1, 0, 1)
        };
        if (out, into, all) != expected {
            violations.push(format!(
                "{status} transfer {transfer}: {out} matching TRANSFER_OUT, {into} matching \
                 TRANSFER_IN, {all} entries in all"
            ));
        }
    }
    let orphans: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT o.id, o.transfer_id, o.kind FROM operations o
         WHERE o.transfer_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = o.transfer_id)",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for (entry, transfer, kind) in orphans {
        violations.push(format!(
            "{kind} entry {entry} names transfer {transfer}, which is not stored"
        ));
    }
}
