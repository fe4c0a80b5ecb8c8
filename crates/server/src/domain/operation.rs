//! Operations: what a client asks for, the rule that decides it, and what is recorded.

use super::{
    Amount, Balance, Funds, HoldRecord, HoldTerms, IdempotencyKey, OperationId, Pending, WalletId,
};
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

    /// The wallet's funds after applying `amount`, or why the operation is refused: money
    /// in up to the balance limit, money out of what is available.
    pub fn apply(self, funds: Funds, amount: Amount) -> Result<Funds, RejectReason> {
        match self {
            Self::Deposit | Self::TransferIn => funds.deposit(amount),
            Self::Withdraw | Self::TransferOut => funds.withdraw(amount),
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

impl RejectReason {
    /// The name stored, as sqlx writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsufficientFunds => "INSUFFICIENT_FUNDS",
            Self::BalanceLimitExceeded => "BALANCE_LIMIT_EXCEEDED",
        }
    }
}

/// What an entry did. A request's own entry is applied, rejected or, for a hold, pending;
/// the entry that resolves a hold is applied (confirmed), voided or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Applied,
    Rejected(RejectReason),
    Pending,
    Voided,
    Expired,
}

impl OperationStatus {
    pub fn reason(self) -> Option<RejectReason> {
        match self {
            Self::Rejected(reason) => Some(reason),
            Self::Applied | Self::Pending | Self::Voided | Self::Expired => None,
        }
    }

    /// The status of a request decided to `outcome`: applied, or pending when it placed a
    /// hold, or rejected.
    pub fn of_request<T>(outcome: &Result<T, RejectReason>, pending: Option<Pending>) -> Self {
        match (outcome, pending) {
            (Err(reason), _) => Self::Rejected(*reason),
            (Ok(_), None) => Self::Applied,
            (Ok(_), Some(_)) => Self::Pending,
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
    /// Set for a pending withdrawal: a hold.
    pub pending: Option<Pending>,
}

impl OperationRequest {
    /// The hold a pending withdrawal places once it is decided pending.
    pub fn hold_terms(&self) -> Option<HoldTerms> {
        self.pending.map(|_| HoldTerms {
            id: self.id,
            wallet: self.wallet_id,
            to: None,
            amount: self.amount,
        })
    }

    /// Whether `other` asks for the same thing. Two requests with one id but different
    /// payloads are a client bug that must be reported, never silently merged.
    pub fn same_payload(&self, wallet_id: WalletId, kind: OperationKind, amount: Amount) -> bool {
        self.wallet_id == wallet_id && self.kind == kind && self.amount == amount
    }

    /// Decides this request against the wallet's current funds, and returns its record and
    /// the funds after it; a pending withdrawal holds its amount instead of taking it.
    pub fn decide(&self, funds: Funds, at: DateTime<Utc>) -> (OperationRecord, Funds) {
        let outcome = match self.pending {
            Some(_) => funds.hold(self.amount),
            None => self.kind.apply(funds, self.amount),
        };
        let status = OperationStatus::of_request(&outcome, self.pending);
        let after = outcome.unwrap_or(funds);
        let record = OperationRecord {
            id: self.id,
            wallet_id: self.wallet_id,
            kind: self.kind,
            amount: self.amount,
            status,
            balance_after: after.balance(),
            available_after: after.available(),
            created_at: at,
            transfer: None,
            hold_id: self.pending.map(|_| self.id),
            expires_at: self.pending.and_then(|pending| pending.expires_at(at)),
        };
        (record, after)
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
    /// The part of that balance no hold reserved.
    pub available_after: Balance,
    pub created_at: DateTime<Utc>,
    /// Set exactly when `kind` is a transfer's side.
    pub transfer: Option<TransferLeg>,
    /// The hold this entry places (its own id, also on a refused pending request) or
    /// resolves.
    pub hold_id: Option<OperationId>,
    /// When the hold this entry places expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which transfer a history entry is a side of, and the wallet on the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLeg {
    pub transfer_id: OperationId,
    pub counterparty: WalletId,
}

impl OperationRecord {
    /// Whether `request` asks for what this entry decided. An entry that resolves a hold
    /// answers no request.
    pub fn matches(&self, request: &OperationRequest) -> bool {
        self.hold_id.is_none_or(|hold| hold == self.id)
            && request.same_payload(self.wallet_id, self.kind, self.amount)
            && self.pending() == request.pending
    }

    /// The hold this entry placed, if it is a pending withdrawal's.
    pub fn placed_hold(&self) -> Option<HoldRecord> {
        (self.status == OperationStatus::Pending).then(|| {
            HoldRecord::placed(
                self.id,
                self.wallet_id,
                None,
                self.amount,
                self.expires_at,
                self.created_at,
            )
        })
    }

    /// The terms of the hold its request asked for, if it asked for one.
    pub fn pending(&self) -> Option<Pending> {
        (self.hold_id == Some(self.id))
            .then(|| Pending::of_record(self.created_at, self.expires_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MAX_MONEY;

    use std::num::NonZeroU32;

    fn amount(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }

    fn funds(v: u64) -> Funds {
        Funds::posted(Balance::new(v).unwrap())
    }

    fn withdrawal(value: u64, pending: Option<Pending>) -> OperationRequest {
        OperationRequest {
            id: OperationId::generate(),
            wallet_id: WalletId::generate(),
            kind: OperationKind::Withdraw,
            amount: amount(value),
            idempotency_key: None,
            pending,
        }
    }

    #[test]
    fn withdraw_of_the_whole_balance_leaves_zero() {
        let after = OperationKind::Withdraw.apply(funds(100), amount(100));
        assert_eq!(after, Ok(funds(0)));
    }

    #[test]
    fn withdraw_more_than_balance_is_insufficient_funds() {
        let after = OperationKind::Withdraw.apply(funds(100), amount(101));
        assert_eq!(after, Err(RejectReason::InsufficientFunds));
    }

    #[test]
    fn deposit_past_the_limit_is_refused() {
        let after = OperationKind::Deposit.apply(funds(MAX_MONEY - 1), amount(2));
        assert_eq!(after, Err(RejectReason::BalanceLimitExceeded));
        let at_limit = OperationKind::Deposit.apply(funds(MAX_MONEY - 1), amount(1));
        assert_eq!(at_limit, Ok(funds(MAX_MONEY)));
    }

    #[test]
    fn a_rejected_operation_records_the_unchanged_balance() {
        let request = withdrawal(7, None);
        let (record, after) = request.decide(funds(5), Utc::now());
        assert_eq!(after, funds(5));
        assert_eq!(
            record.status,
            OperationStatus::Rejected(RejectReason::InsufficientFunds)
        );
        assert_eq!(record.balance_after, Balance::new(5).unwrap());
        assert!(record.matches(&request));
    }

    #[test]
    fn a_pending_withdrawal_holds_its_amount_and_names_its_hold() {
        let pending = Some(Pending {
            timeout: NonZeroU32::new(30),
        });
        let request = withdrawal(40, pending);
        let (record, _) = request.decide(funds(100), Utc::now());
        assert_eq!(record.status, OperationStatus::Pending);
        assert_eq!(record.balance_after.get(), 100);
        assert_eq!(record.available_after.get(), 60);
        assert_eq!(record.hold_id, Some(request.id));
        assert!(record.expires_at.is_some());
        assert!(record.matches(&request));
        let other_timeout = OperationRequest {
            pending: Some(Pending { timeout: None }),
            ..request.clone()
        };
        assert!(!record.matches(&other_timeout));
        let not_pending = OperationRequest {
            pending: None,
            ..request
        };
        assert!(!record.matches(&not_pending));
    }
}
