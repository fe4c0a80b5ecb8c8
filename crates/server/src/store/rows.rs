//! Rows as PostgreSQL returns them, and their conversion into domain records. A row that
//! breaks a domain rule (an amount out of range, a status without its reason) fails to
//! convert: the table's checks should make that impossible, so it is reported as a bug.

use crate::domain::{
    Amount, Balance, Funds, HoldRecord, HoldStatus, OperationId, OperationKind, OperationRecord,
    OperationStatus, Pending, RejectReason, TransferLeg, TransferRecord, Wallet, WalletId,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The columns [`OperationRow`] reads, for every query that returns operations.
pub(super) const OPERATION_COLUMNS: &str = "id, wallet_id, kind, amount, status, reason, \
     balance_after, available_after, created_at, transfer_id, counterparty_wallet_id, hold_id, \
     expires_at";

/// The columns [`TransferRow`] reads.
pub(super) const TRANSFER_COLUMNS: &str = "id, from_wallet_id, to_wallet_id, amount, status, \
     reason, from_balance, from_available, to_balance, to_available, created_at, pending, \
     expires_at";

/// The columns [`HoldRow`] reads.
pub(super) const HOLD_COLUMNS: &str = "id, wallet_id, to_wallet_id, amount, status, \
     confirmed_amount, expires_at, created_at, resolved_at";

/// The columns [`WalletRow`] reads.
pub(super) const WALLET_COLUMNS: &str = "id, balance, held, created_at, updated_at";

/// `operations.status` and `transfers.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum StatusColumn {
    Applied,
    Rejected,
    Pending,
    Voided,
    Expired,
}

impl StatusColumn {
    /// The name stored, as sqlx writes it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "APPLIED",
            Self::Rejected => "REJECTED",
            Self::Pending => "PENDING",
            Self::Voided => "VOIDED",
            Self::Expired => "EXPIRED",
        }
    }
}

impl From<OperationStatus> for StatusColumn {
    fn from(status: OperationStatus) -> Self {
        match status {
            OperationStatus::Applied => Self::Applied,
            OperationStatus::Rejected(_) => Self::Rejected,
            OperationStatus::Pending => Self::Pending,
            OperationStatus::Voided => Self::Voided,
            OperationStatus::Expired => Self::Expired,
        }
    }
}

/// `holds.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum HoldStatusColumn {
    Pending,
    Confirmed,
    Voided,
    Expired,
}

impl HoldStatusColumn {
    /// The name stored, as sqlx writes it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Voided => "VOIDED",
            Self::Expired => "EXPIRED",
        }
    }
}

impl From<HoldStatus> for HoldStatusColumn {
    fn from(status: HoldStatus) -> Self {
        match status {
            HoldStatus::Pending => Self::Pending,
            HoldStatus::Confirmed(_) => Self::Confirmed,
            HoldStatus::Voided => Self::Voided,
            HoldStatus::Expired => Self::Expired,
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
    available_after: i64,
    created_at: DateTime<Utc>,
    transfer_id: Option<Uuid>,
    counterparty_wallet_id: Option<Uuid>,
    hold_id: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
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
    from_available: i64,
    to_balance: i64,
    to_available: i64,
    created_at: DateTime<Utc>,
    pending: bool,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct HoldRow {
    id: Uuid,
    wallet_id: Uuid,
    to_wallet_id: Option<Uuid>,
    amount: i64,
    status: HoldStatusColumn,
    confirmed_amount: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct WalletRow {
    id: Uuid,
    balance: i64,
    held: i64,
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

/// A wallet's balance and held amount, as funds.
pub(super) fn held_funds(balance: i64, held: i64, table: &str) -> sqlx::Result<Funds> {
    Funds::new(self::balance(balance, table)?, self::balance(held, table)?)
        .map_err(|_| invalid("held", table))
}

/// A balance and what of it is available, as funds: `held` is their difference.
pub(super) fn funds(balance: i64, available: i64, table: &str) -> sqlx::Result<Funds> {
    let held = balance
        .checked_sub(available)
        .ok_or_else(|| invalid("available", table))?;
    Funds::new(self::balance(balance, table)?, self::balance(held, table)?)
        .map_err(|_| invalid("available", table))
}

fn status(
    status: StatusColumn,
    reason: Option<RejectReason>,
    table: &str,
) -> sqlx::Result<OperationStatus> {
    match (status, reason) {
        (StatusColumn::Applied, None) => Ok(OperationStatus::Applied),
        (StatusColumn::Rejected, Some(reason)) => Ok(OperationStatus::Rejected(reason)),
        (StatusColumn::Pending, None) => Ok(OperationStatus::Pending),
        (StatusColumn::Voided, None) => Ok(OperationStatus::Voided),
        (StatusColumn::Expired, None) => Ok(OperationStatus::Expired),
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
        let after = funds(row.balance_after, row.available_after, "operations")?;
        Ok(Self {
            id: OperationId::from(row.id),
            wallet_id: WalletId::from(row.wallet_id),
            kind: row.kind,
            amount: amount(row.amount, "operations")?,
            status: status(row.status, row.reason, "operations")?,
            balance_after: after.balance(),
            available_after: after.available(),
            created_at: row.created_at,
            transfer,
            hold_id: row.hold_id.map(OperationId::from),
            expires_at: row.expires_at,
        })
    }
}

impl TryFrom<TransferRow> for TransferRecord {
    type Error = sqlx::Error;

    fn try_from(row: TransferRow) -> sqlx::Result<Self> {
        let from = funds(row.from_balance, row.from_available, "transfers")?;
        let to = funds(row.to_balance, row.to_available, "transfers")?;
        Ok(Self {
            id: OperationId::from(row.id),
            from: WalletId::from(row.from_wallet_id),
            to: WalletId::from(row.to_wallet_id),
            amount: amount(row.amount, "transfers")?,
            status: status(row.status, row.reason, "transfers")?,
            from_balance: from.balance(),
            from_available: from.available(),
            to_balance: to.balance(),
            to_available: to.available(),
            created_at: row.created_at,
            pending: row
                .pending
                .then(|| Pending::of_record(row.created_at, row.expires_at)),
        })
    }
}

impl TryFrom<HoldRow> for HoldRecord {
    type Error = sqlx::Error;

    fn try_from(row: HoldRow) -> sqlx::Result<Self> {
        let status = match (row.status, row.confirmed_amount) {
            (HoldStatusColumn::Pending, None) => HoldStatus::Pending,
            (HoldStatusColumn::Confirmed, Some(confirmed)) => {
                HoldStatus::Confirmed(amount(confirmed, "holds")?)
            }
            (HoldStatusColumn::Voided, None) => HoldStatus::Voided,
            (HoldStatusColumn::Expired, None) => HoldStatus::Expired,
            _ => return Err(invalid("status and confirmed amount", "holds")),
        };
        Ok(Self {
            id: OperationId::from(row.id),
            wallet: WalletId::from(row.wallet_id),
            to: row.to_wallet_id.map(WalletId::from),
            amount: amount(row.amount, "holds")?,
            status,
            expires_at: row.expires_at,
            created_at: row.created_at,
            resolved_at: row.resolved_at,
        })
    }
}

impl TryFrom<WalletRow> for Wallet {
    type Error = sqlx::Error;

    fn try_from(row: WalletRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: WalletId::from(row.id),
            funds: held_funds(row.balance, row.held, "wallets")?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Converts every row, failing on the first that breaks a domain rule.
pub(super) fn convert<R, T: TryFrom<R, Error = sqlx::Error>>(rows: Vec<R>) -> sqlx::Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgArgumentBuffer;
    use sqlx::{Encode, Postgres};

    /// What sqlx writes for `value` of a text column.
    fn written_by_sqlx<T: for<'q> Encode<'q, Postgres>>(value: T) -> String {
        let mut buffer = PgArgumentBuffer::default();
        let _ = value.encode_by_ref(&mut buffer).unwrap();
        String::from_utf8(buffer.to_vec()).unwrap()
    }

    #[test]
    fn the_names_written_for_the_pipelined_driver_are_the_ones_sqlx_reads() {
        use {HoldStatusColumn as H, OperationKind as K, RejectReason as R, StatusColumn as S};
        for status in [S::Applied, S::Rejected, S::Pending, S::Voided, S::Expired] {
            assert_eq!(status.as_str(), written_by_sqlx(status));
        }
        for status in [H::Pending, H::Confirmed, H::Voided, H::Expired] {
            assert_eq!(status.as_str(), written_by_sqlx(status));
        }
        for kind in [K::Deposit, K::Withdraw, K::TransferOut, K::TransferIn] {
            assert_eq!(kind.as_str(), written_by_sqlx(kind));
        }
        for reason in [R::InsufficientFunds, R::BalanceLimitExceeded] {
            assert_eq!(reason.as_str(), written_by_sqlx(reason));
        }
    }
}
