//! Transfers: money moved from one wallet to another, both sides in one decision.

use super::{
    Amount, Balance, Funds, HoldRecord, HoldTerms, IdempotencyKey, OperationId, OperationKind,
    OperationRecord, OperationStatus, Pending, RejectReason, TransferLeg, WalletId,
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
    pending: Option<Pending>,
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
            pending: None,
        })
    }

    /// The same transfer as a hold on the source, moved only once confirmed.
    pub fn pending(self, pending: Option<Pending>) -> Self {
        Self { pending, ..self }
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
    /// The hold a pending transfer places once it is decided pending.
    pub fn hold_terms(&self) -> Option<HoldTerms> {
        self.pending.map(|_| HoldTerms {
            id: self.id,
            wallet: self.from,
            to: Some(self.to),
            amount: self.amount,
        })
    }

    pub fn idempotency_key(&self) -> Option<&IdempotencyKey> {
        self.idempotency_key.as_ref()
    }

    /// Decides this transfer against both wallets' current funds, with the same rule as a
    /// withdrawal from the source and a deposit to the destination. It is applied only if
    /// both sides are; a rejection names the side that refused, the source first. A pending
    /// transfer only holds its amount on the source (if the destination could take it now):
    /// the destination sees nothing until it is confirmed. Returns the record and both wallets' funds after it.
    pub fn decide(
        &self,
        from: Funds,
        to: Funds,
        at: DateTime<Utc>,
    ) -> (TransferRecord, Funds, Funds) {
        let sides = match self.pending {
            // The destination must be able to take the amount now, as for any transfer; it
            // is asked again when the hold is confirmed.
            Some(_) => from
                .hold(self.amount)
                .and_then(|from| Ok((from, to.deposit(self.amount).map(|_| to)?))),
            None => OperationKind::TransferOut
                .apply(from, self.amount)
                .and_then(|from| Ok((from, OperationKind::TransferIn.apply(to, self.amount)?))),
        };
        let status = OperationStatus::of_request(&sides, self.pending);
        let (from_after, to_after) = sides.unwrap_or((from, to));
        let record = TransferRecord {
            id: self.id,
            from: self.from,
            to: self.to,
            amount: self.amount,
            status,
            from_balance: from_after.balance(),
            from_available: from_after.available(),
            to_balance: to_after.balance(),
            to_available: to_after.available(),
            created_at: at,
            pending: self.pending,
        };
        (record, from_after, to_after)
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
    /// Each wallet's balance right after the transfer (both unchanged when rejected or
    /// pending), and the part of it no hold reserves.
    pub from_balance: Balance,
    pub from_available: Balance,
    pub to_balance: Balance,
    pub to_available: Balance,
    pub created_at: DateTime<Utc>,
    /// Set when the request asked for a hold.
    pub pending: Option<Pending>,
}

impl TransferRecord {
    pub fn matches(&self, request: &TransferRequest) -> bool {
        self.from == request.from
            && self.to == request.to
            && self.amount == request.amount
            && self.pending == request.pending
    }

    /// The hold this transfer placed, if it is pending.
    pub fn placed_hold(&self) -> Option<HoldRecord> {
        (self.status == OperationStatus::Pending).then(|| {
            HoldRecord::placed(
                self.id,
                self.from,
                Some(self.to),
                self.amount,
                self.expires_at(),
                self.created_at,
            )
        })
    }

    /// When the hold this transfer placed expires, if ever.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.pending?.expires_at(self.created_at)
    }

    /// The wallet that refused a rejected transfer, with its balance and what of it was
    /// available.
    pub fn refused_by(&self) -> Option<(WalletId, Balance, Balance)> {
        match self.status.reason()? {
            RejectReason::InsufficientFunds => {
                Some((self.from, self.from_balance, self.from_available))
            }
            RejectReason::BalanceLimitExceeded => {
                Some((self.to, self.to_balance, self.to_available))
            }
        }
    }

    /// The id of the destination's history entry; none for a rejection, which the
    /// destination never saw.
    pub fn incoming_id(&self) -> Option<OperationId> {
        (self.status == OperationStatus::Applied).then(|| self.id.incoming_side())
    }

    /// The entries the transfer adds to its wallets' histories: the source's, named by the
    /// transfer's own id, and, when applied, the destination's. A rejection or a hold is the
    /// source's entry only; the destination sees a hold once it is confirmed.
    pub fn legs(&self) -> impl Iterator<Item = OperationRecord> + '_ {
        let leg =
            |id, wallet, kind, (balance_after, available_after), counterparty| OperationRecord {
                id,
                wallet_id: wallet,
                kind,
                amount: self.amount,
                status: self.status,
                balance_after,
                available_after,
                created_at: self.created_at,
                transfer: Some(TransferLeg {
                    transfer_id: self.id,
                    counterparty,
                }),
                hold_id: self.pending.map(|_| self.id),
                expires_at: self.expires_at(),
            };
        let outgoing = leg(
            self.id,
            self.from,
            OperationKind::TransferOut,
            (self.from_balance, self.from_available),
            self.to,
        );
        let incoming = self.incoming_id().map(|id| {
            leg(
                id,
                self.to,
                OperationKind::TransferIn,
                (self.to_balance, self.to_available),
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

    fn funds(v: u64) -> Funds {
        Funds::posted(balance(v))
    }

    fn transfer(amount: u64) -> TransferRequest {
        let amount = Amount::new(amount).unwrap();
        let (from, to) = (WalletId::generate(), WalletId::generate());
        TransferRequest::new(OperationId::generate(), from, to, amount, None).unwrap()
    }

    #[test]
    fn a_transfer_between_one_wallet_and_itself_is_not_a_request() {
        let wallet = WalletId::generate();
        let amount = Amount::new(1).unwrap();
        let request = TransferRequest::new(OperationId::generate(), wallet, wallet, amount, None);
        assert_eq!(request, Err(SameWallet));
    }

    #[test]
    fn an_applied_transfer_moves_the_amount_and_has_two_sides() {
        let request = transfer(30);
        let (record, ..) = request.decide(funds(100), funds(5), Utc::now());
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
        let (record, ..) = request.decide(funds(100), funds(0), Utc::now());
        let refused = OperationStatus::Rejected(RejectReason::InsufficientFunds);
        assert_eq!(record.status, refused);
        assert_eq!(
            record.refused_by(),
            Some((request.from, balance(100), balance(100)))
        );
        assert_eq!(record.legs().count(), 1);
    }

    #[test]
    fn a_transfer_past_the_destinations_limit_is_refused_by_the_destination() {
        let request = transfer(2);
        let (record, ..) = request.decide(funds(10), funds(MAX_MONEY - 1), Utc::now());
        let refused = OperationStatus::Rejected(RejectReason::BalanceLimitExceeded);
        assert_eq!(record.status, refused);
        assert_eq!(
            record.refused_by(),
            Some((request.to, balance(MAX_MONEY - 1), balance(MAX_MONEY - 1)))
        );
        assert_eq!(
            (record.from_balance, record.to_balance),
            (balance(10), balance(MAX_MONEY - 1))
        );
    }

    #[test]
    fn a_pending_transfer_holds_on_the_source_and_leaves_the_destination_alone() {
        let request = transfer(30).pending(Some(Pending { timeout: None }));
        let (record, ..) = request.decide(funds(100), funds(5), Utc::now());
        assert_eq!(record.status, OperationStatus::Pending);
        assert_eq!(
            (record.from_balance, record.from_available),
            (balance(100), balance(70))
        );
        assert_eq!(record.to_balance, balance(5));
        let legs: Vec<_> = record.legs().collect();
        assert_eq!(legs.len(), 1);
        assert_eq!(legs[0].status, OperationStatus::Pending);
        assert_eq!(legs[0].hold_id, Some(request.id));
        assert!(record.matches(&request));
        assert!(!record.matches(&request.clone().pending(None)));
    }

    #[test]
    fn a_pending_transfer_the_destination_could_not_take_is_refused() {
        let request = transfer(2).pending(Some(Pending { timeout: None }));
        let (record, from, _) = request.decide(funds(10), funds(MAX_MONEY - 1), Utc::now());
        let refused = OperationStatus::Rejected(RejectReason::BalanceLimitExceeded);
        assert_eq!(record.status, refused);
        assert_eq!(from, funds(10));
    }
}
