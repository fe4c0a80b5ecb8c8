//! Creating a wallet on request: the one write outside the ledger's batches. It moves no
//! money, so it needs neither a lock nor a writer; a deposit creates wallets in its batch.

use super::rows::{WALLET_COLUMNS, WalletRow};
use super::{StoreResult, connection};
use crate::domain::{Wallet, WalletId};
use sqlx::PgPool;
use uuid::Uuid;

/// Creates an empty wallet; `None` when the id is taken.
pub async fn create(pool: &PgPool, id: WalletId) -> StoreResult<Option<Wallet>> {
    let sql = format!(
        "INSERT INTO wallets (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING {WALLET_COLUMNS}"
    );
    let row: Option<WalletRow> = sqlx::query_as(&sql)
        .bind(Uuid::from(id))
        .fetch_optional(&mut *connection(pool).await?)
        .await?;
    Ok(row.map(Wallet::try_from).transpose()?)
}
