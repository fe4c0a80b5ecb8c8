//! The stored ledger's invariants, checked with SQL behind the API. They hold whatever the
//! clients sent, so any test that moved money may ask for them:
//!
//! - replaying a wallet's entries in order gives each entry's `balance_after` and
//!   `available_after`, never below zero, and ends at the stored balance and held amount:
//!   applied deposits and incoming transfers add to the balance, applied withdrawals and
//!   outgoing transfers take from it, a hold entry reserves its amount, a void or an expiry
//!   releases it, and a confirmation takes the confirmed amount and releases the hold;
//! - a wallet's held amount is the sum of its pending holds, between 0 and its balance;
//! - transfers conserve money: the sum of all balances is applied deposits minus applied
//!   withdrawals;
//! - an applied transfer has exactly one `TRANSFER_OUT` entry on its source and one
//!   `TRANSFER_IN` on its destination, both applied, with its amount and balances; a rejected
//!   one has only a rejected `TRANSFER_OUT`; a pending one keeps its row and its `PENDING`
//!   out entry, and gains the entries of its hold's resolution; no entry names a transfer
//!   that is not stored;
//! - every hold has its `PENDING` entry on its source; one that is no longer pending has
//!   exactly one resolution entry there, as it was resolved (a confirmation `APPLIED` with the
//!   confirmed amount, and for a transfer the matching `TRANSFER_IN` on the destination; a
//!   void or an expiry with the held amount), and a pending one none; no entry names a hold
//!   that is not stored, except a rejected request for one.

use super::database::on_citus;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use uuid::Uuid;

/// Every broken invariant, described; empty when the ledger is consistent.
pub async fn violations(db: &mut PgConnection) -> Vec<String> {
    let mut tx = db.begin().await.unwrap();
    if on_citus() {
        // The checks join tables on other columns than the wallet id, which Citus refuses
        // across shards: they run on a copy of each table on the coordinator, made in this
        // transaction, whose temporary tables come first in the search path.
        for table in ["wallets", "operations", "transfers", "holds"] {
            let copy =
                format!("CREATE TEMP TABLE {table} ON COMMIT DROP AS SELECT * FROM public.{table}");
            sqlx::query(&copy).execute(&mut *tx).await.unwrap();
        }
    }
    let db = &mut *tx;
    let mut violations = Vec::new();
    entries_replay_to_their_balance_and_available(db, &mut violations).await;
    held_is_the_sum_of_pending_holds(db, &mut violations).await;
    money_is_conserved(db, &mut violations).await;
    transfers_have_their_legs(db, &mut violations).await;
    holds_are_resolved_once(db, &mut violations).await;
    tx.rollback().await.unwrap();
    violations
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

async fn transfers_have_their_legs(db: &mut PgConnection, violations: &mut Vec<String>) {
    // Per transfer: its matching out leg, its matching in leg, every entry naming it, and the
    // status of its hold when it is a pending transfer.
    let legs: Vec<(Uuid, String, i64, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT t.id, t.status,
                (SELECT count(*) FROM operations o
                 WHERE o.transfer_id = t.id AND o.kind = 'TRANSFER_OUT' AND o.status = t.status
                   AND o.wallet_id = t.from_wallet_id AND o.counterparty_wallet_id = t.to_wallet_id
                   AND o.amount = t.amount AND o.balance_after = t.from_balance),
                (SELECT count(*) FROM operations o
                 WHERE o.transfer_id = t.id AND o.kind = 'TRANSFER_IN' AND o.status = 'APPLIED'
                   AND o.wallet_id = t.to_wallet_id AND o.counterparty_wallet_id = t.from_wallet_id
                   AND o.amount = t.amount AND o.balance_after = t.to_balance),
                (SELECT count(*) FROM operations o WHERE o.transfer_id = t.id),
                (SELECT h.status FROM holds h WHERE h.id = t.id)
         FROM transfers t",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for (transfer, status, out, into, all, hold) in legs {
        // (out, in, all); `None` where the in leg is not checked here: a pending transfer's
        // legs, once confirmed, carry the confirmed amount and are checked with its hold.
        let expected: Option<(i64, Option<i64>, i64)> = match (status.as_str(), hold.as_deref()) {
            ("APPLIED", None) => Some((1, Some(1), 2)),
            ("REJECTED", None) => Some((1, Some(0), 1)),
            ("PENDING", Some("PENDING")) => Some((1, None, 1)),
            ("PENDING", Some("CONFIRMED")) => Some((1, None, 3)),
            ("PENDING", Some("VOIDED" | "EXPIRED")) => Some((1, None, 2)),
            _ => None,
        };
        let checked_into = matches!(expected, Some((_, Some(_), _))).then_some(into);
        if expected != Some((out, checked_into, all)) {
            violations.push(format!(
                "{status} transfer {transfer} (hold {hold:?}): {out} matching TRANSFER_OUT, \
                 {into} matching TRANSFER_IN, {all} entries in all"
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

/// A row of `operations`, with the held amount of the hold it resolves when it is a
/// confirmation (an applied out entry naming a hold other than itself).
#[derive(sqlx::FromRow)]
struct Entry {
    wallet_id: Uuid,
    id: Uuid,
    kind: String,
    status: String,
    amount: i64,
    balance_after: i64,
    available_after: i64,
    confirmed_hold: Option<i64>,
}

async fn entries_replay_to_their_balance_and_available(
    db: &mut PgConnection,
    violations: &mut Vec<String>,
) {
    let entries: Vec<Entry> = sqlx::query_as(
        "SELECT o.wallet_id, o.id, o.kind, o.status, o.amount, o.balance_after,
                o.available_after, h.amount AS confirmed_hold
         FROM operations o
         LEFT JOIN holds h ON h.id = o.hold_id AND o.id <> o.hold_id AND o.status = 'APPLIED'
                          AND o.kind IN ('WITHDRAW', 'TRANSFER_OUT')
         ORDER BY o.wallet_id, o.seq",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    let stored: HashMap<Uuid, (i64, i64)> = sqlx::query_as("SELECT id, balance, held FROM wallets")
        .fetch_all(&mut *db)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, balance, held)| (id, (balance, held)))
        .collect();
    // (balance, held) of each wallet, replayed so far.
    let mut replayed: HashMap<Uuid, (i64, i64)> = HashMap::new();
    for entry in entries {
        let (balance, held) = replayed.entry(entry.wallet_id).or_default();
        let amount = entry.amount;
        match (entry.status.as_str(), entry.kind.as_str()) {
            ("APPLIED", "DEPOSIT" | "TRANSFER_IN") => *balance += amount,
            ("APPLIED", "WITHDRAW" | "TRANSFER_OUT") => {
                *balance -= amount;
                *held -= entry.confirmed_hold.unwrap_or(0);
            }
            ("PENDING", "WITHDRAW" | "TRANSFER_OUT") => *held += amount,
            ("VOIDED" | "EXPIRED", "WITHDRAW" | "TRANSFER_OUT") => *held -= amount,
            ("REJECTED", _) => {}
            (status, kind) => violations.push(format!(
                "entry {}: {status} {kind} is no kind of entry",
                entry.id
            )),
        }
        let available = *balance - *held;
        if (entry.balance_after, entry.available_after) != (*balance, available)
            || *held < 0
            || available < 0
        {
            violations.push(format!(
                "entry {} ({} {} {amount}): balance_after {}, available_after {}; replayed \
                 balance {balance}, held {held}",
                entry.id, entry.status, entry.kind, entry.balance_after, entry.available_after
            ));
        }
    }
    for (wallet, (balance, held)) in stored {
        let history = replayed.get(&wallet).copied().unwrap_or_default();
        if history != (balance, held) {
            violations.push(format!(
                "wallet {wallet}: balance {balance} and held {held}, replayed history {history:?}"
            ));
        }
    }
}

async fn held_is_the_sum_of_pending_holds(db: &mut PgConnection, violations: &mut Vec<String>) {
    let rows: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT w.id, w.balance, w.held,
                COALESCE((SELECT SUM(h.amount) FROM holds h
                          WHERE h.wallet_id = w.id AND h.status = 'PENDING'), 0)::int8
         FROM wallets w",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for (wallet, balance, held, pending) in rows {
        if held != pending || held < 0 || held > balance {
            violations.push(format!(
                "wallet {wallet}: held {held}, balance {balance}, pending holds {pending}"
            ));
        }
    }
}

/// A hold with what its entries show: `placed` is its matching `PENDING` entry,
/// `resolutions` every entry on its source naming it other than that one, `matching` those
/// that match its status and amount, `incoming` the `TRANSFER_IN` entries of its confirmed
/// amount on its destination.
#[derive(sqlx::FromRow)]
struct HoldEntries {
    id: Uuid,
    status: String,
    amount: i64,
    confirmed_amount: Option<i64>,
    transfer: bool,
    resolved: bool,
    placed: i64,
    resolutions: i64,
    matching: i64,
    incoming: i64,
}

async fn holds_are_resolved_once(db: &mut PgConnection, violations: &mut Vec<String>) {
    let holds: Vec<HoldEntries> = sqlx::query_as(
        "SELECT h.id, h.status, h.amount, h.confirmed_amount,
                h.to_wallet_id IS NOT NULL AS transfer, h.resolved_at IS NOT NULL AS resolved,
                (SELECT count(*) FROM operations o
                 WHERE o.id = h.id AND o.hold_id = h.id AND o.wallet_id = h.wallet_id
                   AND o.kind = k.kind AND o.status = 'PENDING' AND o.amount = h.amount) AS placed,
                (SELECT count(*) FROM operations o
                 WHERE o.hold_id = h.id AND o.id <> h.id AND o.wallet_id = h.wallet_id)
                   AS resolutions,
                (SELECT count(*) FROM operations o
                 WHERE o.hold_id = h.id AND o.id <> h.id AND o.wallet_id = h.wallet_id
                   AND o.kind = k.kind
                   AND o.status = CASE h.status WHEN 'CONFIRMED' THEN 'APPLIED' ELSE h.status END
                   AND o.amount = COALESCE(h.confirmed_amount, h.amount)
                   AND (h.to_wallet_id IS NULL
                        OR (o.transfer_id = h.id AND o.counterparty_wallet_id = h.to_wallet_id)))
                   AS matching,
                (SELECT count(*) FROM operations o
                 WHERE o.transfer_id = h.id AND o.kind = 'TRANSFER_IN' AND o.status = 'APPLIED'
                   AND o.wallet_id = h.to_wallet_id AND o.counterparty_wallet_id = h.wallet_id
                   AND o.amount = h.confirmed_amount) AS incoming
         FROM holds h,
              LATERAL (SELECT CASE WHEN h.to_wallet_id IS NULL THEN 'WITHDRAW'
                                   ELSE 'TRANSFER_OUT' END AS kind) k",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for hold in holds {
        let pending = hold.status == "PENDING";
        let confirmed = hold.status == "CONFIRMED";
        let confirmed_in_range = hold
            .confirmed_amount
            .is_none_or(|amount| (1..=hold.amount).contains(&amount));
        let consistent = hold.placed == 1
            && hold.resolved != pending
            && hold.confirmed_amount.is_some() == confirmed
            && confirmed_in_range
            && (hold.resolutions, hold.matching) == if pending { (0, 0) } else { (1, 1) }
            && hold.incoming == i64::from(confirmed && hold.transfer);
        if !consistent {
            violations.push(format!(
                "{} hold {} of {} (confirmed {:?}, transfer {}, resolved {}): {} PENDING \
                 entries, {} resolution entries of which {} match, {} TRANSFER_IN",
                hold.status,
                hold.id,
                hold.amount,
                hold.confirmed_amount,
                hold.transfer,
                hold.resolved,
                hold.placed,
                hold.resolutions,
                hold.matching,
                hold.incoming
            ));
        }
    }
    let orphans: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT o.id, o.hold_id, o.status FROM operations o
         WHERE o.hold_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.id = o.hold_id)
           AND NOT (o.status = 'REJECTED' AND o.id = o.hold_id)",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for (entry, hold, status) in orphans {
        violations.push(format!(
            "{status} entry {entry} names hold {hold}, which is not stored"
        ));
    }
}
