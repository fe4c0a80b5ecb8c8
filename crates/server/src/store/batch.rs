//! The statements of one group-commit transaction. Each takes the whole batch at once
//! (arrays bound as parameters), so a batch costs the same number of round trips whatever
//! its size.

use super::rows::{self, OPERATION_COLUMNS, OperationRow, StatusColumn};
use super::{StoreResult, uuids};
use crate::domain::{
    Balance, IdempotencyKey, OperationId, OperationKind, OperationRecord, RejectReason, WalletId,
};
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

/// Records the batch's decided operations (applied and rejected alike) and writes each
/// changed wallet's final balance once, however many operations hit it: one statement, one
/// round trip. `false` when some record's id was taken already: the statement failed, and
/// the caller must roll back.
pub async fn write_batch<'a>(
    conn: &mut PgConnection,
    records: impl Iterator<Item = (&'a OperationRecord, Option<&'a IdempotencyKey>)>,
    balances: &[(WalletId, Balance)],
) -> StoreResult<bool> {
    let mut columns = OperationColumns::default();
    for (record, key) in records {
        columns.push(record, key);
    }
    if columns.id.is_empty() {
        return Ok(true);
    }
    let wallet_ids: Vec<Uuid> = balances.iter().map(|&(id, _)| id.into()).collect();
    let wallet_balances: Vec<i64> = balances.iter().map(|&(_, b)| b.into()).collect();
    let written = sqlx::query(
        "WITH inserted AS ( \
           INSERT INTO operations \
             (id, wallet_id, kind, amount, status, reason, balance_after, idempotency_key, created_at) \
           SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[], \
                                $6::text[], $7::int8[], $8::text[], $9::timestamptz[]) \
         ), updated AS ( \
           UPDATE wallets SET balance = v.balance, updated_at = now() \
           FROM UNNEST($10::uuid[], $11::int8[]) AS v (id, balance) WHERE wallets.id = v.id \
         ) \
         SELECT 1",
    )
    .bind(columns.id)
    .bind(columns.wallet_id)
    .bind(columns.kind)
    .bind(columns.amount)
    .bind(columns.status)
    .bind(columns.reason)
    .bind(columns.balance_after)
    .bind(columns.idempotency_key)
    .bind(columns.created_at)
    .bind(wallet_ids)
    .bind(wallet_balances)
    .execute(conn)
    .await;
    match written {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("operations_pkey") => {
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// Column-wise copy of a batch of records, the shape `UNNEST` takes.
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
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
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
    }
}
