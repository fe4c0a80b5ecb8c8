//! Rows as PostgreSQL returns them, and their conversion into domain records. A row that
//! breaks a domain rule (an amount out of range, a status without its reason) fails to
//! convert: the table's checks should make that impossible, so it is reported as a bug.

use crate::domain::{
    Amount, Balance, OperationId, OperationKind, OperationRecord, OperationStatus, RejectReason,
    TransferLeg, TransferRecord, Wallet, WalletId,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The columns [`OperationRow`] reads, for every query that returns operations.
pub(super) const OPERATION_COLUMNS: &str = "id, wallet_id, kind, amount, status, reason, \
     balance_after, created_at, transfer_id, counterparty_wallet_id";

/// The columns [`TransferRow`] reads.
pub(super) const TRANSFER_COLUMNS: &str = "id, from_wallet_id, to_wallet_id, amount, status, \
     reason, from_balance, to_balance, created_at";

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
    transfer_id: Option<Uuid>,
    counterparty_wallet_id: Option<Uuid>,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct TransferRow {
    id: Uuid,
    from_wallet_id: Uuid,
    to_wallet_id: Uuid,
    amount: i64,
    status: StatusColumn,
    reason: Option<RejectReason>,
    from_balance: i64,
    to_balance: i64,
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

fn amount(value: i64, table: &str) -> sqlx::Result<Amount> {
    Amount::try_from(value).map_err(|_| invalid("amount", table))
}

fn status(
    status: StatusColumn,
    reason: Option<RejectReason>,
    table: &str,
) -> sqlx::Result<OperationStatus> {
    match (status, reason) {
        (StatusColumn::Applied, None) => Ok(OperationStatus::Applied),
        (StatusColumn::Rejected, Some(reason)) => Ok(OperationStatus::Rejected(reason)),
        _ => Err(invalid("status and reason", table)),
    }
}

impl TryFrom<OperationRow> for OperationRecord {
    type Error = sqlx::Error;

    fn try_from(row: OperationRow) -> sqlx::Result<Self> {
        let is_transfer = matches!(
            row.kind,
            OperationKind::TransferOut | OperationKind::TransferIn
        );
        let transfer = match (row.transfer_id, row.counterparty_wallet_id) {
            (Some(transfer_id), Some(counterparty)) if is_transfer => Some(TransferLeg {
                transfer_id: OperationId::from(transfer_id),
                counterparty: WalletId::from(counterparty),
            }),
            (None, None) if !is_transfer => None,
            _ => return Err(invalid("transfer columns", "operations")),
        };
        Ok(Self {
            id: OperationId::from(row.id),
            wallet_id: WalletId::from(row.wallet_id),
            kind: row.kind,
            amount: amount(row.amount, "operations")?,
            status: status(row.status, row.reason, "operations")?,
            balance_after: balance(row.balance_after, "operations")?,
            created_at: row.created_at,
            transfer,
        })
    }
}

impl TryFrom<TransferRow> for TransferRecord {
    type Error = sqlx::Error;

    fn try_from(row: TransferRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: OperationId::from(row.id),
            from: WalletId::from(row.from_wallet_id),
            to: WalletId::from(row.to_wallet_id),
            amount: amount(row.amount, "transfers")?,
            status: status(row.status, row.reason, "transfers")?,
            from_balance: balance(row.from_balance, "transfers")?,
            to_balance: balance(row.to_balance, "transfers")?,
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
