//! Rows as PostgreSQL returns them, and their conversion into domain records. A row that
//! breaks a domain rule (an amount out of range, a status without its reason) fails to
//! convert: the table's checks should make that impossible, so it is reported as a bug.

use crate::domain::{
    Amount, Balance, OperationId, OperationKind, OperationRecord, OperationStatus, RejectReason,
    Wallet, WalletId,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The columns [`OperationRow`] reads, for every query that returns operations.
pub(super) const OPERATION_COLUMNS: &str =
    "id, wallet_id, kind, amount, status, reason, balance_after, created_at";

/// `operations.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum StatusColumn {
    Applied,
    Rejected,
}

impl From<OperationStatus> for StatusColumn {
    fn from(status: OperationStatus) -> Self {
        match status {
            OperationStatus::Applied => Self::Applied,
            OperationStatus::Rejected(_) => Self::Rejected,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct OperationRow {
    id: Uuid,
    wallet_id: Uuid,
    kind: OperationKind,
    amount: i64,
    status: StatusColumn,
    reason: Option<RejectReason>,
    balance_after: i64,
    created_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct WalletRow {
    id: Uuid,
    balance: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn invalid(what: &str, table: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("invalid {what} in a {table} row").into())
}

pub(super) fn balance(value: i64, table: &str) -> sqlx::Result<Balance> {
    Balance::try_from(value).map_err(|_| invalid("balance", table))
}

impl TryFrom<OperationRow> for OperationRecord {
    type Error = sqlx::Error;

    fn try_from(row: OperationRow) -> sqlx::Result<Self> {
        let status = match (row.status, row.reason) {
            (StatusColumn::Applied, None) => OperationStatus::Applied,
            (StatusColumn::Rejected, Some(reason)) => OperationStatus::Rejected(reason),
            _ => return Err(invalid("status and reason", "operations")),
        };
        Ok(Self {
            id: OperationId::from(row.id),
            wallet_id: WalletId::from(row.wallet_id),
            kind: row.kind,
            amount: Amount::try_from(row.amount).map_err(|_| invalid("amount", "operations"))?,
            status,
            balance_after: balance(row.balance_after, "operations")?,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<WalletRow> for Wallet {
    type Error = sqlx::Error;

    fn try_from(row: WalletRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: WalletId::from(row.id),
            balance: balance(row.balance, "wallets")?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Converts every row, failing on the first that breaks a domain rule.
pub(super) fn convert<R, T: TryFrom<R, Error = sqlx::Error>>(rows: Vec<R>) -> sqlx::Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}
