//! Creating a wallet on request: the one write outside the ledger's batches. It moves no
//! money, so it needs neither a lock nor a writer; a deposit creates wallets in its batch.

use super::rows::WalletRow;
use super::{StoreResult, connection};
use crate::domain::{Wallet, WalletId};
use sqlx::PgPool;
use uuid::Uuid;

/// Creates an empty wallet; `None` when the id is taken.
pub async fn create(pool: &PgPool, id: WalletId) -> StoreResult<Option<Wallet>> {
    let row: Option<WalletRow> = sqlx::query_as(
        "INSERT INTO wallets (id) VALUES ($1) ON CONFLICT DO NOTHING \
         RETURNING id, balance, created_at, updated_at",
    )
    .bind(Uuid::from(id))
    .fetch_optional(&mut *connection(pool).await?)
    .await?;
    Ok(row.map(Wallet::try_from).transpose()?)
}
