//! Transfers: money moved from one wallet to another, both sides in one decision.

use super::{
    Amount, Balance, IdempotencyKey, OperationId, OperationKind, OperationRecord, OperationStatus,
    RejectReason, TransferLeg, WalletId,
};
use chrono::{DateTime, Utc};

/// Why a transfer request is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fromWalletId and toWalletId must be different wallets")]
pub struct SameWallet;

/// A validated request to move `amount` from one wallet to another. The two wallets are
/// different: [`TransferRequest::new`] is the only way to build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    id: OperationId,
    from: WalletId,
    to: WalletId,
    amount: Amount,
    idempotency_key: Option<IdempotencyKey>,
}

impl TransferRequest {
    pub fn new(
        id: OperationId,
        from: WalletId,
        to: WalletId,
        amount: Amount,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Self, SameWallet> {
        if from == to {
            return Err(SameWallet);
        }
        Ok(Self {
            id,
            from,
            to,
            amount,
            idempotency_key,
        })
    }

    pub fn id(&self) -> OperationId {
        self.id
    }

    pub fn from(&self) -> WalletId {
        self.from
    }

    pub fn to(&self) -> WalletId {
        self.to
    }

    pub fn amount(&self) -> Amount {
        self.amount
    }

    /// Set when the client named the transfer with a header rather than an id.
    pub fn idempotency_key(&self) -> Option<&IdempotencyKey> {
        self.idempotency_key.as_ref()
    }

    /// Decides this transfer against both wallets' current balances, with the same rule
    /// as a withdrawal from the source and a deposit to the destination. It is applied
    /// only if both sides are; a rejection names the side that refused, the source first.
    pub fn decide(&self, from: Balance, to: Balance, at: DateTime<Utc>) -> TransferRecord {
        let sides = OperationKind::TransferOut
            .apply(from, self.amount)
            .and_then(|from| Ok((from, OperationKind::TransferIn.apply(to, self.amount)?)));
        let (status, from_balance, to_balance) = match sides {
            Ok((from, to)) => (OperationStatus::Applied, from, to),
            Err(reason) => (OperationStatus::Rejected(reason), from, to),
        };
        TransferRecord {
            id: self.id,
            from: self.from,
            to: self.to,
            amount: self.amount,
            status,
            from_balance,
            to_balance,
            created_at: at,
        }
    }
}

/// A decided transfer, as stored and as reported to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub id: OperationId,
    pub from: WalletId,
    pub to: WalletId,
    pub amount: Amount,
    pub status: OperationStatus,
    /// Each wallet's balance right after the transfer (both unchanged when rejected).
    pub from_balance: Balance,
    pub to_balance: Balance,
    pub created_at: DateTime<Utc>,
}

impl TransferRecord {
    pub fn matches(&self, request: &TransferRequest) -> bool {
        self.from == request.from && self.to == request.to && self.amount == request.amount
    }

    /// The wallet whose balance refused a rejected transfer, and that balance.
    pub fn refused_by(&self) -> Option<(WalletId, Balance)> {
        match self.status.reason()? {
            RejectReason::InsufficientFunds => Some((self.from, self.from_balance)),
            RejectReason::BalanceLimitExceeded => Some((self.to, self.to_balance)),
        }
    }

    /// The id of the destination's history entry; none for a rejection, which the
    /// destination never saw.
    pub fn incoming_id(&self) -> Option<OperationId> {
        (self.status == OperationStatus::Applied).then(|| self.id.incoming_side())
    }

    /// The entries the transfer adds to its wallets' histories: the source's, named by the
    /// transfer's own id, and, when applied, the destination's. A rejection is the source's
    /// attempt only; the destination never saw it.
    pub fn legs(&self) -> impl Iterator<Item = OperationRecord> + '_ {
        let leg = |id, wallet, kind, balance_after, counterparty| OperationRecord {
            id,
            wallet_id: wallet,
            kind,
            amount: self.amount,
            status: self.status,
            balance_after,
            created_at: self.created_at,
            transfer: Some(TransferLeg {
                transfer_id: self.id,
                counterparty,
            }),
        };
        let outgoing = leg(
            self.id,
            self.from,
            OperationKind::TransferOut,
            self.from_balance,
            self.to,
        );
        let incoming = self.incoming_id().map(|id| {
            leg(
                id,
                self.to,
                OperationKind::TransferIn,
                self.to_balance,
                self.from,
            )
        });
        std::iter::once(outgoing).chain(incoming)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MAX_MONEY;

    fn balance(v: u64) -> Balance {
        Balance::new(v).unwrap()
    }

    fn transfer(amount: u64) -> TransferRequest {
        let amount = Amount::new(amount).unwrap();
        let (from, to) = (WalletId::new_random(), WalletId::new_random());
        TransferRequest::new(OperationId::new_random(), from, to, amount, None).unwrap()
    }

    #[test]
    fn a_transfer_between_one_wallet_and_itself_is_not_a_request() {
        let wallet = WalletId::new_random();
        let amount = Amount::new(1).unwrap();
        let request = TransferRequest::new(OperationId::new_random(), wallet, wallet, amount, None);
        assert_eq!(request, Err(SameWallet));
    }

    #[test]
    fn an_applied_transfer_moves_the_amount_and_has_two_sides() {
        let request = transfer(30);
        let record = request.decide(balance(100), balance(5), Utc::now());
        assert_eq!(record.status, OperationStatus::Applied);
        assert_eq!(
            (record.from_balance, record.to_balance),
            (balance(70), balance(35))
        );
        let legs: Vec<_> = record.legs().collect();
        assert_eq!(legs.len(), 2);
        assert_eq!((legs[0].id, legs[0].wallet_id), (request.id, request.from));
        assert_eq!(legs[0].balance_after, balance(70));
        assert_eq!(legs[1].wallet_id, request.to);
        assert_eq!(legs[1].balance_after, balance(35));
        assert_ne!(legs[1].id, request.id);
        assert_eq!(legs[1].transfer.unwrap().counterparty, request.from);
    }

    #[test]
    fn a_transfer_larger_than_the_source_is_refused_by_the_source() {
        let request = transfer(101);
        let record = request.decide(balance(100), balance(0), Utc::now());
        let refused = OperationStatus::Rejected(RejectReason::InsufficientFunds);
        assert_eq!(record.status, refused);
        assert_eq!(record.refused_by(), Some((request.from, balance(100))));
        assert_eq!(record.legs().count(), 1);
    }

    #[test]
    fn a_transfer_past_the_destinations_limit_is_refused_by_the_destination() {
        let request = transfer(2);
        let record = request.decide(balance(10), balance(MAX_MONEY - 1), Utc::now());
        let refused = OperationStatus::Rejected(RejectReason::BalanceLimitExceeded);
        assert_eq!(record.status, refused);
        assert_eq!(
            record.refused_by(),
            Some((request.to, balance(MAX_MONEY - 1)))
        );
        assert_eq!(
            (record.from_balance, record.to_balance),
            (balance(10), balance(MAX_MONEY - 1))
        );
    }
}
