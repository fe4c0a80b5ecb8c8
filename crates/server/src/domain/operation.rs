//! Operations: what a client asks for, the rule that decides it, and what is recorded.

use super::{Amount, Balance, IdempotencyKey, OperationId, WalletId};
use chrono::{DateTime, Utc};

/// What an entry of a wallet's history did to it. Clients ask for deposits and withdrawals;
/// the two transfer kinds are the sides of a transfer. Stored as its name in a text column
/// (`DEPOSIT`, `TRANSFER_OUT`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationKind {
    Deposit,
    Withdraw,
    TransferOut,
    TransferIn,
}

impl OperationKind {
    /// The name in metric labels, as clients spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "DEPOSIT",
            Self::Withdraw => "WITHDRAW",
            Self::TransferOut => "TRANSFER_OUT",
            Self::TransferIn => "TRANSFER_IN",
        }
    }

    /// The balance after applying `amount` to `balance`, or why the operation is refused.
    /// This is the one place where money is decided.
    pub fn apply(self, balance: Balance, amount: Amount) -> Result<Balance, RejectReason> {
        match self {
            Self::Deposit | Self::TransferIn => balance
                .checked_add(amount)
                .ok_or(RejectReason::BalanceLimitExceeded),
            Self::Withdraw | Self::TransferOut => balance
                .checked_sub(amount)
                .ok_or(RejectReason::InsufficientFunds),
        }
    }
}

/// Why a well-formed operation was refused. Rejections are recorded like successes, so a
/// retry of a rejected operation is answered with the same rejection. Stored as its name in
/// a text column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    InsufficientFunds,
    BalanceLimitExceeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Applied,
    Rejected(RejectReason),
}

impl OperationStatus {
    pub fn reason(self) -> Option<RejectReason> {
        match self {
            Self::Applied => None,
            Self::Rejected(reason) => Some(reason),
        }
    }
}

/// A validated request to move money in or out of one wallet, as the ledger receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRequest {
    pub id: OperationId,
    pub wallet_id: WalletId,
    /// `Deposit` or `Withdraw`: the transfer kinds are only ever recorded, as a transfer's
    /// sides.
    pub kind: OperationKind,
    pub amount: Amount,
    /// Set when the client named the operation with a header rather than an id.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl OperationRequest {
    /// Whether `other` asks for the same thing. Two requests with one id but different
    /// payloads are a client bug that must be reported, never silently merged.
    pub fn same_payload(&self, wallet_id: WalletId, kind: OperationKind, amount: Amount) -> bool {
        self.wallet_id == wallet_id && self.kind == kind && self.amount == amount
    }

    /// Decides this request against the wallet's current balance.
    pub fn decide(&self, balance: Balance, at: DateTime<Utc>) -> OperationRecord {
        let (status, balance_after) = match self.kind.apply(balance, self.amount) {
            Ok(after) => (OperationStatus::Applied, after),
            Err(reason) => (OperationStatus::Rejected(reason), balance),
        };
        OperationRecord {
            id: self.id,
            wallet_id: self.wallet_id,
            kind: self.kind,
            amount: self.amount,
            status,
            balance_after,
            created_at: at,
            transfer: None,
        }
    }
}

/// A decided operation: an entry of one wallet's history, as stored and as reported to
/// clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRecord {
    pub id: OperationId,
    pub wallet_id: WalletId,
    pub kind: OperationKind,
    pub amount: Amount,
    pub status: OperationStatus,
    /// The wallet's balance right after this operation (unchanged when rejected).
    pub balance_after: Balance,
    pub created_at: DateTime<Utc>,
    /// Set exactly when `kind` is a transfer's side.
    pub transfer: Option<TransferLeg>,
}

/// Which transfer a history entry is a side of, and the wallet on the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLeg {
    pub transfer_id: OperationId,
    pub counterparty: WalletId,
}

impl OperationRecord {
    pub fn matches(&self, request: &OperationRequest) -> bool {
        request.same_payload(self.wallet_id, self.kind, self.amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MAX_MONEY;

    fn amount(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }

    fn balance(v: u64) -> Balance {
        Balance::new(v).unwrap()
    }

    #[test]
    fn withdraw_of_the_whole_balance_leaves_zero() {
        let after = OperationKind::Withdraw.apply(balance(100), amount(100));
        assert_eq!(after, Ok(Balance::ZERO));
    }

    #[test]
    fn withdraw_more_than_balance_is_insufficient_funds() {
        let after = OperationKind::Withdraw.apply(balance(100), amount(101));
        assert_eq!(after, Err(RejectReason::InsufficientFunds));
    }

    #[test]
    fn deposit_past_the_limit_is_refused() {
        let after = OperationKind::Deposit.apply(balance(MAX_MONEY - 1), amount(2));
        assert_eq!(after, Err(RejectReason::BalanceLimitExceeded));
        let at_limit = OperationKind::Deposit.apply(balance(MAX_MONEY - 1), amount(1));
        assert_eq!(at_limit, Ok(balance(MAX_MONEY)));
    }

    #[test]
    fn a_rejected_operation_records_the_unchanged_balance() {
        let request = OperationRequest {
            id: OperationId::new_random(),
            wallet_id: WalletId::new_random(),
            kind: OperationKind::Withdraw,
            amount: amount(7),
            idempotency_key: None,
        };
        let record = request.decide(balance(5), Utc::now());
        assert_eq!(
            record.status,
            OperationStatus::Rejected(RejectReason::InsufficientFunds)
        );
        assert_eq!(record.balance_after, balance(5));
        assert!(record.matches(&request));
    }
}
