//! The statements of one group-commit transaction. Each takes the whole batch at once
//! (arrays bound as parameters), so a batch costs the same number of round trips whatever
//! its size.

use super::rows::{
    self, OPERATION_COLUMNS, OperationRow, StatusColumn, TRANSFER_COLUMNS, TransferRow,
};
use super::{StoreResult, uuids};
use crate::domain::{
    Balance, IdempotencyKey, OperationId, OperationKind, OperationRecord, RejectReason,
    TransferRecord, WalletId,
};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Locks the existing wallets among `ids` (sorted ascending) and returns their balances.
pub async fn lock_wallets(
    conn: &mut PgConnection,
    ids: &[WalletId],
) -> StoreResult<HashMap<WalletId, Balance>> {
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, balance FROM wallets WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(uuids(ids))
            .fetch_all(conn)
            .await?;
    let balances = rows
        .into_iter()
        .map(|(id, balance)| Ok((WalletId::from(id), rows::balance(balance, "wallets")?)))
        .collect::<sqlx::Result<_>>()?;
    Ok(balances)
}

/// Creates the wallets among `ids` (sorted ascending) that do not exist yet, and returns
/// the ones it created.
pub async fn create_wallets(
    conn: &mut PgConnection,
    ids: &[WalletId],
) -> StoreResult<HashSet<WalletId>> {
    let created: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO wallets (id) SELECT * FROM UNNEST($1::uuid[]) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(uuids(ids))
    .fetch_all(conn)
    .await?;
    Ok(created.into_iter().map(WalletId::from).collect())
}

/// The operations already stored under any of `ids`.
pub async fn find_operations(
    conn: &mut PgConnection,
    ids: &[OperationId],
) -> StoreResult<HashMap<OperationId, OperationRecord>> {
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ANY($1)");
    let rows: Vec<OperationRow> = sqlx::query_as(&sql)
        .bind(uuids(ids))
        .fetch_all(conn)
        .await?;
    let records: Vec<OperationRecord> = rows::convert(rows)?;
    Ok(records.into_iter().map(|r| (r.id, r)).collect())
}

/// The transfers stored under any of `ids`.
pub async fn find_transfers(
    conn: &mut PgConnection,
    ids: &[OperationId],
) -> StoreResult<HashMap<OperationId, TransferRecord>> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)");
    let rows: Vec<TransferRow> = sqlx::query_as(&sql)
        .bind(uuids(ids))
        .fetch_all(conn)
        .await?;
    let records: Vec<TransferRecord> = rows::convert(rows)?;
    Ok(records.into_iter().map(|r| (r.id, r)).collect())
}

/// Everything one batch writes, laid out column by column, the shape `UNNEST` takes.
#[derive(Default)]
pub struct Writes {
    operations: OperationColumns,
    transfers: TransferColumns,
}

impl Writes {
    /// A decided deposit or withdrawal, applied or rejected.
    pub fn operation(&mut self, record: &OperationRecord, key: Option<&IdempotencyKey>) {
        self.operations.push(record, key);
    }

    /// A decided transfer: its own record and its entries in the wallets' histories.
    pub fn transfer(&mut self, record: &TransferRecord, key: Option<&IdempotencyKey>) {
        self.transfers.push(record, key);
        for leg in record.legs() {
            self.operations.push(&leg, None);
        }
    }

    /// Records everything and writes each changed wallet's final balance once, however
    /// many operations hit it: one statement, one round trip. `false` when some record's id
    /// was taken already: the statement failed, and the caller must roll back.
    pub async fn write(
        self,
        conn: &mut PgConnection,
        balances: &[(WalletId, Balance)],
    ) -> StoreResult<bool> {
        let (operations, transfers) = (self.operations, self.transfers);
        if operations.id.is_empty() {
            return Ok(true);
        }
        let wallet_ids: Vec<Uuid> = balances.iter().map(|&(id, _)| id.into()).collect();
        let wallet_balances: Vec<i64> = balances.iter().map(|&(_, b)| b.into()).collect();
        let written = sqlx::query(
            "WITH operation_rows AS ( \
               INSERT INTO operations \
                 (id, wallet_id, kind, amount, status, reason, balance_after, idempotency_key, \
                  created_at, transfer_id, counterparty_wallet_id) \
               SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[], \
                                    $6::text[], $7::int8[], $8::text[], $9::timestamptz[], \
                                    $10::uuid[], $11::uuid[]) \
             ), transfer_rows AS ( \
               INSERT INTO transfers \
                 (id, from_wallet_id, to_wallet_id, amount, status, reason, from_balance, \
                  to_balance, idempotency_key, created_at) \
               SELECT * FROM UNNEST($12::uuid[], $13::uuid[], $14::uuid[], $15::int8[], \
                                    $16::text[], $17::text[], $18::int8[], $19::int8[], \
                                    $20::text[], $21::timestamptz[]) \
             ), updated AS ( \
               UPDATE wallets SET balance = v.balance, updated_at = now() \
               FROM UNNEST($22::uuid[], $23::int8[]) AS v (id, balance) WHERE wallets.id = v.id \
             ) \
             SELECT 1",
        )
        .bind(operations.id)
        .bind(operations.wallet_id)
        .bind(operations.kind)
        .bind(operations.amount)
        .bind(operations.status)
        .bind(operations.reason)
        .bind(operations.balance_after)
        .bind(operations.idempotency_key)
        .bind(operations.created_at)
        .bind(operations.transfer_id)
        .bind(operations.counterparty)
        .bind(transfers.id)
        .bind(transfers.from)
        .bind(transfers.to)
        .bind(transfers.amount)
        .bind(transfers.status)
        .bind(transfers.reason)
        .bind(transfers.from_balance)
        .bind(transfers.to_balance)
        .bind(transfers.idempotency_key)
        .bind(transfers.created_at)
        .bind(wallet_ids)
        .bind(wallet_balances)
        .execute(conn)
        .await;
        match written {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(error))
                if matches!(
                    error.constraint(),
                    Some("operations_pkey" | "transfers_pkey")
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }
}

#[derive(Default)]
struct OperationColumns {
    id: Vec<Uuid>,
    wallet_id: Vec<Uuid>,
    kind: Vec<OperationKind>,
    amount: Vec<i64>,
    status: Vec<StatusColumn>,
    reason: Vec<Option<RejectReason>>,
    balance_after: Vec<i64>,
    idempotency_key: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    transfer_id: Vec<Option<Uuid>>,
    counterparty: Vec<Option<Uuid>>,
}

impl OperationColumns {
    fn push(&mut self, record: &OperationRecord, key: Option<&IdempotencyKey>) {
        self.id.push(record.id.into());
        self.wallet_id.push(record.wallet_id.into());
        self.kind.push(record.kind);
        self.amount.push(record.amount.into());
        self.status.push(record.status.into());
        self.reason.push(record.status.reason());
        self.balance_after.push(record.balance_after.into());
        self.idempotency_key
            .push(key.map(|k| k.as_str().to_owned()));
        self.created_at.push(record.created_at);
        self.transfer_id
            .push(record.transfer.map(|leg| leg.transfer_id.into()));
        self.counterparty
            .push(record.transfer.map(|leg| leg.counterparty.into()));
    }
}

#[derive(Default)]
struct TransferColumns {
    id: Vec<Uuid>,
    from: Vec<Uuid>,
    to: Vec<Uuid>,
    amount: Vec<i64>,
    status: Vec<StatusColumn>,
    reason: Vec<Option<RejectReason>>,
    from_balance: Vec<i64>,
    to_balance: Vec<i64>,
    idempotency_key: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
}

impl TransferColumns {
    fn push(&mut self, record: &TransferRecord, key: Option<&IdempotencyKey>) {
        self.id.push(record.id.into());
        self.from.push(record.from.into());
        self.to.push(record.to.into());
        self.amount.push(record.amount.into());
        self.status.push(record.status.into());
        self.reason.push(record.status.reason());
        self.from_balance.push(record.from_balance.into());
        self.to_balance.push(record.to_balance.into());
        self.idempotency_key
            .push(key.map(|k| k.as_str().to_owned()));
        self.created_at.push(record.created_at);
    }
}
