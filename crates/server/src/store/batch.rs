//! The statements of one group-commit transaction. Each takes the whole batch at once
//! (arrays bound as parameters), so a batch costs the same number of round trips whatever
//! its size.

use super::rows::{
    self, HOLD_COLUMNS, HoldRow, HoldStatusColumn, OPERATION_COLUMNS, OperationRow, StatusColumn,
    TRANSFER_COLUMNS, TransferRow,
};
use super::{StoreResult, uuids};
use crate::domain::{
    Funds, HoldRecord, HoldStatus, IdempotencyKey, OperationId, OperationKind, OperationRecord,
    RejectReason, TransferRecord, WalletId,
};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Locks the existing wallets among `ids` (sorted ascending) and returns their funds.
pub async fn lock_wallets(
    conn: &mut PgConnection,
    ids: &[WalletId],
) -> StoreResult<HashMap<WalletId, Funds>> {
    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT id, balance, balance - held FROM wallets WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(uuids(ids))
    .fetch_all(conn)
    .await?;
    let funds = rows
        .into_iter()
        .map(|(id, balance, available)| {
            Ok((
                WalletId::from(id),
                rows::funds(balance, available, "wallets")?,
            ))
        })
        .collect::<sqlx::Result<_>>()?;
    Ok(funds)
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

/// The holds stored under any of `ids`.
pub async fn find_holds(
    conn: &mut PgConnection,
    ids: &[OperationId],
) -> StoreResult<HashMap<OperationId, HoldRecord>> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = ANY($1)");
    let rows: Vec<HoldRow> = sqlx::query_as(&sql)
        .bind(uuids(ids))
        .fetch_all(conn)
        .await?;
    let records: Vec<HoldRecord> = rows::convert(rows)?;
    Ok(records.into_iter().map(|r| (r.id, r)).collect())
}

/// Everything one batch writes, laid out column by column, the shape `UNNEST` takes.
#[derive(Default)]
pub struct Writes {
    operations: OperationColumns,
    transfers: TransferColumns,
    holds: HoldColumns,
    resolutions: ResolutionColumns,
}

impl Writes {
    /// A decided deposit or withdrawal (applied, rejected or pending), or an entry that
    /// resolves a hold.
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

    /// A hold placed in the batch, as it stands at the end of it.
    pub fn new_hold(&mut self, record: &HoldRecord) {
        self.holds.push(record);
    }

    /// A stored hold the batch resolved.
    pub fn resolved_hold(&mut self, record: &HoldRecord) {
        self.resolutions.push(record);
    }

    /// Records everything and writes each changed wallet's final funds once, however many
    /// operations hit it: one statement, one round trip. `false` when some record's id was
    /// taken already: the statement failed, and the caller must roll back.
    pub async fn write(
        self,
        conn: &mut PgConnection,
        funds: &[(WalletId, Funds)],
    ) -> StoreResult<bool> {
        let Self {
            operations,
            transfers,
            holds,
            resolutions,
        } = self;
        if operations.id.is_empty() {
            return Ok(true);
        }
        let wallet_ids: Vec<Uuid> = funds.iter().map(|&(id, _)| id.into()).collect();
        let wallet_balances: Vec<i64> = funds.iter().map(|&(_, f)| f.balance().into()).collect();
        let wallet_held: Vec<i64> = funds.iter().map(|&(_, f)| f.held().into()).collect();
        let written = sqlx::query(
            "WITH operation_rows AS ( \
               INSERT INTO operations \
                 (id, wallet_id, kind, amount, status, reason, balance_after, available_after, \
                  idempotency_key, created_at, transfer_id, counterparty_wallet_id, hold_id, \
                  expires_at) \
               SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[], \
                                    $6::text[], $7::int8[], $8::int8[], $9::text[], \
                                    $10::timestamptz[], $11::uuid[], $12::uuid[], $13::uuid[], \
                                    $14::timestamptz[]) \
             ), transfer_rows AS ( \
               INSERT INTO transfers \
                 (id, from_wallet_id, to_wallet_id, amount, status, reason, from_balance, \
                  from_available, to_balance, to_available, idempotency_key, created_at, \
                  pending, expires_at) \
               SELECT * FROM UNNEST($15::uuid[], $16::uuid[], $17::uuid[], $18::int8[], \
                                    $19::text[], $20::text[], $21::int8[], $22::int8[], \
                                    $23::int8[], $24::int8[], $25::text[], $26::timestamptz[], \
                                    $27::bool[], $28::timestamptz[]) \
             ), hold_rows AS ( \
               INSERT INTO holds \
                 (id, wallet_id, to_wallet_id, amount, status, confirmed_amount, expires_at, \
                  created_at, resolved_at) \
               SELECT * FROM UNNEST($29::uuid[], $30::uuid[], $31::uuid[], $32::int8[], \
                                    $33::text[], $34::int8[], $35::timestamptz[], \
                                    $36::timestamptz[], $37::timestamptz[]) \
             ), resolved_holds AS ( \
               UPDATE holds SET status = v.status, confirmed_amount = v.confirmed_amount, \
                 resolved_at = v.resolved_at \
               FROM UNNEST($38::uuid[], $39::text[], $40::int8[], $41::timestamptz[]) \
                 AS v (id, status, confirmed_amount, resolved_at) \
               WHERE holds.id = v.id \
             ), updated AS ( \
               UPDATE wallets SET balance = v.balance, held = v.held, updated_at = now() \
               FROM UNNEST($42::uuid[], $43::int8[], $44::int8[]) AS v (id, balance, held) \
               WHERE wallets.id = v.id \
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
        .bind(operations.available_after)
        .bind(operations.idempotency_key)
        .bind(operations.created_at)
        .bind(operations.transfer_id)
        .bind(operations.counterparty)
        .bind(operations.hold_id)
        .bind(operations.expires_at)
        .bind(transfers.id)
        .bind(transfers.from)
        .bind(transfers.to)
        .bind(transfers.amount)
        .bind(transfers.status)
        .bind(transfers.reason)
        .bind(transfers.from_balance)
        .bind(transfers.from_available)
        .bind(transfers.to_balance)
        .bind(transfers.to_available)
        .bind(transfers.idempotency_key)
        .bind(transfers.created_at)
        .bind(transfers.pending)
        .bind(transfers.expires_at)
        .bind(holds.id)
        .bind(holds.wallet)
        .bind(holds.to)
        .bind(holds.amount)
        .bind(holds.status)
        .bind(holds.confirmed_amount)
        .bind(holds.expires_at)
        .bind(holds.created_at)
        .bind(holds.resolved_at)
        .bind(resolutions.id)
        .bind(resolutions.status)
        .bind(resolutions.confirmed_amount)
        .bind(resolutions.resolved_at)
        .bind(wallet_ids)
        .bind(wallet_balances)
        .bind(wallet_held)
        .execute(conn)
        .await;
        match written {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(error))
                if matches!(
                    error.constraint(),
                    // A new hold takes its request's id, so its key reports a taken id too.
                    Some("operations_pkey" | "transfers_pkey" | "holds_pkey")
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
    available_after: Vec<i64>,
    idempotency_key: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    transfer_id: Vec<Option<Uuid>>,
    counterparty: Vec<Option<Uuid>>,
    hold_id: Vec<Option<Uuid>>,
    expires_at: Vec<Option<DateTime<Utc>>>,
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
        self.available_after.push(record.available_after.into());
        self.idempotency_key
            .push(key.map(|k| k.as_str().to_owned()));
        self.created_at.push(record.created_at);
        self.transfer_id
            .push(record.transfer.map(|leg| leg.transfer_id.into()));
        self.counterparty
            .push(record.transfer.map(|leg| leg.counterparty.into()));
        self.hold_id.push(record.hold_id.map(Uuid::from));
        self.expires_at.push(record.expires_at);
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
    from_available: Vec<i64>,
    to_balance: Vec<i64>,
    to_available: Vec<i64>,
    idempotency_key: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    pending: Vec<bool>,
    expires_at: Vec<Option<DateTime<Utc>>>,
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
        self.from_available.push(record.from_available.into());
        self.to_balance.push(record.to_balance.into());
        self.to_available.push(record.to_available.into());
        self.idempotency_key
            .push(key.map(|k| k.as_str().to_owned()));
        self.created_at.push(record.created_at);
        self.pending.push(record.pending.is_some());
        self.expires_at.push(record.expires_at());
    }
}

#[derive(Default)]
struct HoldColumns {
    id: Vec<Uuid>,
    wallet: Vec<Uuid>,
    to: Vec<Option<Uuid>>,
    amount: Vec<i64>,
    status: Vec<HoldStatusColumn>,
    confirmed_amount: Vec<Option<i64>>,
    expires_at: Vec<Option<DateTime<Utc>>>,
    created_at: Vec<DateTime<Utc>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
}

impl HoldColumns {
    fn push(&mut self, record: &HoldRecord) {
        self.id.push(record.id.into());
        self.wallet.push(record.wallet.into());
        self.to.push(record.to.map(Uuid::from));
        self.amount.push(record.amount.into());
        self.status.push(record.status.into());
        self.confirmed_amount.push(confirmed_amount(record.status));
        self.expires_at.push(record.expires_at);
        self.created_at.push(record.created_at);
        self.resolved_at.push(record.resolved_at);
    }
}

/// What resolving a stored hold changes of its row.
#[derive(Default)]
struct ResolutionColumns {
    id: Vec<Uuid>,
    status: Vec<HoldStatusColumn>,
    confirmed_amount: Vec<Option<i64>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
}

impl ResolutionColumns {
    fn push(&mut self, record: &HoldRecord) {
        self.id.push(record.id.into());
        self.status.push(record.status.into());
        self.confirmed_amount.push(confirmed_amount(record.status));
        self.resolved_at.push(record.resolved_at);
    }
}

fn confirmed_amount(status: HoldStatus) -> Option<i64> {
    match status {
        HoldStatus::Confirmed(amount) => Some(amount.into()),
        HoldStatus::Pending | HoldStatus::Voided | HoldStatus::Expired => None,
    }
}
