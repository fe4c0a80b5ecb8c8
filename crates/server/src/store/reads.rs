//! Reads and wallet creation: single statements on the pool, by primary key or by index.

use super::{OPERATION_COLUMNS, balance_from, operation_from_row, uuids};
use crate::domain::{Balance, OperationId, OperationRecord, WalletId};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    pub balance: Balance,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const WALLET_COLUMNS: &str = "id, balance, created_at, updated_at";

fn wallet_from_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<Wallet> {
    Ok(Wallet {
        id: WalletId::from(row.try_get::<Uuid, _>("id")?),
        balance: balance_from(row.try_get("balance")?)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The existing wallets among `ids`, in one query.
pub async fn wallets(pool: &PgPool, ids: &[WalletId]) -> sqlx::Result<Vec<Wallet>> {
    let sql = format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE id = ANY($1)");
    let rows = sqlx::query(&sql).bind(uuids(ids)).fetch_all(pool).await?;
    rows.iter().map(wallet_from_row).collect()
}

/// Creates an empty wallet; `None` when the id is taken.
pub async fn create_wallet(pool: &PgPool, id: WalletId) -> sqlx::Result<Option<Wallet>> {
    let sql = format!(
        "INSERT INTO wallets (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING {WALLET_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(Uuid::from(id))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(wallet_from_row).transpose()
}

pub async fn operation(
    pool: &PgPool,
    wallet: WalletId,
    id: OperationId,
) -> sqlx::Result<Option<OperationRecord>> {
    let sql =
        format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1 AND wallet_id = $2");
    let row = sqlx::query(&sql)
        .bind(Uuid::from(id))
        .bind(Uuid::from(wallet))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(operation_from_row).transpose()
}

/// One page of history, newest first.
#[derive(Debug)]
pub struct HistoryPage {
    pub items: Vec<OperationRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// Operations of `wallet` older than `before` (a `seq` from a previous page), newest first.
pub async fn history(
    pool: &PgPool,
    wallet: WalletId,
    before: Option<i64>,
    limit: u32,
) -> sqlx::Result<HistoryPage> {
    let sql = format!(
        "SELECT {OPERATION_COLUMNS}, seq FROM operations \
         WHERE wallet_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    );
    // One extra row tells whether another page follows.
    let rows = sqlx::query(&sql)
        .bind(Uuid::from(wallet))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?;
    let more = rows.len() > limit as usize;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next_cursor = match rows.last() {
        Some(last) if more => Some(last.try_get("seq")?),
        _ => None,
    };
    let items = rows
        .iter()
        .map(operation_from_row)
        .collect::<sqlx::Result<_>>()?;
    Ok(HistoryPage { items, next_cursor })
}
