//! Reads: single statements on the pool, by primary key or by index.

use super::rows::{
    self, HOLD_COLUMNS, HoldRow, OPERATION_COLUMNS, OperationRow, TRANSFER_COLUMNS, TransferRow,
    WALLET_COLUMNS, WalletRow,
};
use super::{StoreResult, connection, uuids};
use crate::domain::{HoldRecord, OperationId, OperationRecord, TransferRecord, Wallet, WalletId};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The existing wallets among `ids`, in one query.
pub async fn wallets(pool: &PgPool, ids: &[WalletId]) -> StoreResult<Vec<Wallet>> {
    let sql = format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE id = ANY($1)");
    let rows: Vec<WalletRow> = sqlx::query_as(&sql)
        .bind(uuids(ids))
        .fetch_all(&mut *connection(pool).await?)
        .await?;
    Ok(rows::convert(rows)?)
}

pub async fn operation(
    pool: &PgPool,
    wallet: WalletId,
    id: OperationId,
) -> StoreResult<Option<OperationRecord>> {
    let sql =
        format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1 AND wallet_id = $2");
    let row: Option<OperationRow> = sqlx::query_as(&sql)
        .bind(Uuid::from(id))
        .bind(Uuid::from(wallet))
        .fetch_optional(&mut *connection(pool).await?)
        .await?;
    Ok(row.map(OperationRecord::try_from).transpose()?)
}

/// One page of history, newest first.
#[derive(Debug)]
pub struct HistoryPage {
    pub items: Vec<OperationRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// An operation with its place in the wallet's history.
#[derive(sqlx::FromRow)]
struct HistoryRow {
    #[sqlx(flatten)]
    operation: OperationRow,
    seq: i64,
}

/// Operations of `wallet` older than `before` (a `seq` from a previous page), newest first.
pub async fn history(
    pool: &PgPool,
    wallet: WalletId,
    before: Option<i64>,
    limit: u32,
) -> StoreResult<HistoryPage> {
    let sql = format!(
        "SELECT {OPERATION_COLUMNS}, seq FROM operations \
         WHERE wallet_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    );
    // One extra row tells whether another page follows.
    let mut rows: Vec<HistoryRow> = sqlx::query_as(&sql)
        .bind(Uuid::from(wallet))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *connection(pool).await?)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = rows.last().filter(|_| more).map(|last| last.seq);
    let items = rows::convert(rows.into_iter().map(|row| row.operation).collect())?;
    Ok(HistoryPage { items, next_cursor })
}

pub async fn transfer(pool: &PgPool, id: OperationId) -> StoreResult<Option<TransferRecord>> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1");
    let row: Option<TransferRow> = sqlx::query_as(&sql)
        .bind(Uuid::from(id))
        .fetch_optional(&mut *connection(pool).await?)
        .await?;
    Ok(row.map(TransferRecord::try_from).transpose()?)
}

pub async fn hold(pool: &PgPool, id: OperationId) -> StoreResult<Option<HoldRecord>> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1");
    let row: Option<HoldRow> = sqlx::query_as(&sql)
        .bind(Uuid::from(id))
        .fetch_optional(&mut *connection(pool).await?)
        .await?;
    Ok(row.map(HoldRecord::try_from).transpose()?)
}

/// Pending holds whose expiry is `at` or earlier, the most overdue first: their ids and
/// source wallets.
pub async fn due_holds(
    pool: &PgPool,
    at: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<(OperationId, WalletId)>> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, wallet_id FROM holds \
         WHERE status = 'PENDING' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind(at)
    .bind(i64::from(limit))
    .fetch_all(&mut *connection(pool).await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, wallet)| (id.into(), wallet.into()))
        .collect())
}
