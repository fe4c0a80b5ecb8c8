//! Holds: money reserved by a pending withdrawal or transfer, then confirmed (moved),
//! voided (released) or expired (released by time).

use super::{
    Amount, Funds, OperationId, OperationKind, OperationRecord, OperationStatus, RejectReason,
    TransferLeg, WalletId,
};
use chrono::{DateTime, TimeDelta, Utc};
use std::num::NonZeroU32;

/// What makes a withdrawal or a transfer a hold: its amount is reserved instead of moved,
/// for `timeout` seconds or until it is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// `None`: the hold never expires.
    pub timeout: Option<NonZeroU32>,
}

impl Pending {
    /// When a hold placed `at` expires.
    pub fn expires_at(self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.timeout
            .map(|seconds| at + TimeDelta::seconds(i64::from(seconds.get())))
    }

    /// The terms a stored request was made with: its time and its expiry give the timeout
    /// back exactly, as both are kept at the same precision.
    pub fn of_record(created_at: DateTime<Utc>, expires_at: Option<DateTime<Utc>>) -> Self {
        let timeout = expires_at.map(|expires| {
            let seconds = (expires - created_at).num_seconds();
            // A stored timeout was one of these; anything else matches no request.
            u32::try_from(seconds)
                .ok()
                .and_then(NonZeroU32::new)
                .unwrap_or(NonZeroU32::MAX)
        });
        Self { timeout }
    }
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStatus {
    Pending,
    /// Moved this much; the rest of the hold was released.
    Confirmed(Amount),
    Voided,
    Expired,
}

/// Money reserved on one wallet: for a withdrawal, or for a transfer to `to`. Named by the
/// id of the request that placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord {
    pub id: OperationId,
    pub wallet: WalletId,
    /// A pending transfer's destination; `None` for a pending withdrawal.
    pub to: Option<WalletId>,
    pub amount: Amount,
    pub status: HoldStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When it stopped being pending.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// What never changes about a hold: enough to route a decision about it and check its
/// amount, before the writer reads where the hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldTerms {
    pub id: OperationId,
    pub wallet: WalletId,
    pub to: Option<WalletId>,
    pub amount: Amount,
}

/// What a client or the clock decides about a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAction {
    /// Move this much (at most the held amount) and release the rest.
    Confirm(Amount),
    Void,
    /// Release it because its time is up; refused while it is not.
    Expire,
}

/// A decision about one hold, as the ledger receives it: with the hold's wallets, which
/// never change, so that it is routed and locked like any request on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldDecision {
    pub hold: OperationId,
    pub wallet: WalletId,
    pub to: Option<WalletId>,
    pub action: HoldAction,
}

/// A confirmation for more than the hold reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount must not exceed the held amount {held}")]
pub struct ExceedsHold {
    pub held: Amount,
}

/// A hold resolved: its new state, its wallets' funds after, and its history entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub hold: HoldRecord,
    pub from: Funds,
    pub to: Option<Funds>,
    pub entries: Vec<OperationRecord>,
}

impl HoldDecision {
    /// Confirms `hold` for `amount`, or for all of it.
    pub fn confirm(hold: HoldTerms, amount: Option<Amount>) -> Result<Self, ExceedsHold> {
        let amount = amount.unwrap_or(hold.amount);
        if amount > hold.amount {
            return Err(ExceedsHold { held: hold.amount });
        }
        Ok(Self::about(hold, HoldAction::Confirm(amount)))
    }

    pub fn void(hold: HoldTerms) -> Self {
        Self::about(hold, HoldAction::Void)
    }

    /// Expires a hold past its time; only its source is touched.
    pub fn expire(hold: OperationId, wallet: WalletId) -> Self {
        Self {
            hold,
            wallet,
            to: None,
            action: HoldAction::Expire,
        }
    }

    fn about(hold: HoldTerms, action: HoldAction) -> Self {
        Self {
            hold: hold.id,
            wallet: hold.wallet,
            to: hold.to,
            action,
        }
    }

    /// The wallets the decision changes: a confirmed transfer's destination too.
    pub fn wallets(&self) -> (WalletId, Option<WalletId>) {
        match self.action {
            HoldAction::Confirm(_) => (self.wallet, self.to),
            HoldAction::Void | HoldAction::Expire => (self.wallet, None),
        }
    }
}

impl HoldRecord {
    /// A hold placed by the pending request `id`.
    pub fn placed(
        id: OperationId,
        wallet: WalletId,
        to: Option<WalletId>,
        amount: Amount,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            wallet,
            to,
            amount,
            status: HoldStatus::Pending,
            expires_at,
            created_at: at,
            resolved_at: None,
        }
    }

    pub fn terms(&self) -> HoldTerms {
        HoldTerms {
            id: self.id,
            wallet: self.wallet,
            to: self.to,
            amount: self.amount,
        }
    }

    /// Whether a pending hold's time is up at `at`.
    pub fn is_due(&self, at: DateTime<Utc>) -> bool {
        self.status == HoldStatus::Pending && self.expires_at.is_some_and(|expires| expires <= at)
    }

    /// Whether `action` is what already happened to this hold: then asking again replays it.
    pub fn resolved_by(&self, action: HoldAction) -> bool {
        matches!(
            (self.status, action),
            (HoldStatus::Confirmed(done), HoldAction::Confirm(asked)) if done == asked
        ) || matches!(
            (self.status, action),
            (HoldStatus::Voided, HoldAction::Void) | (HoldStatus::Expired, HoldAction::Expire)
        )
    }

    /// Resolves this pending hold by `action` against its wallets' funds (`to` only for a
    /// confirmed transfer). A confirmation releases the whole hold and moves the confirmed
    /// part; it is refused only when the destination would pass the balance limit.
    /// `release` fails only on funds that do not hold this hold, which a consistent ledger
    /// never has.
    pub fn resolve(
        &self,
        action: HoldAction,
        from: Funds,
        to: Option<Funds>,
        at: DateTime<Utc>,
    ) -> Result<Resolved, Refused> {
        let released = from.release(self.amount).ok_or(Refused::Inconsistent)?;
        let (status, from, to) = match action {
            HoldAction::Confirm(amount) => {
                let from = released
                    .withdraw(amount)
                    .map_err(|_| Refused::Inconsistent)?;
                let to = match (self.to, to) {
                    (Some(_), Some(to)) => Some(to.deposit(amount).map_err(Refused::Rejected)?),
                    (None, _) => None,
                    (Some(_), None) => return Err(Refused::Inconsistent),
                };
                (HoldStatus::Confirmed(amount), from, to)
            }
            HoldAction::Void => (HoldStatus::Voided, released, None),
            HoldAction::Expire => (HoldStatus::Expired, released, None),
        };
        let hold = Self {
            status,
            resolved_at: Some(at),
            ..self.clone()
        };
        let entries = hold.entries(from, to, at);
        Ok(Resolved {
            hold,
            from,
            to,
            entries,
        })
    }

    /// The history entries of this just-resolved hold: on its source, a confirmation with
    /// the amount moved or a release of the whole amount; on a confirmed transfer's
    /// destination, the money coming in. Their ids are new: what makes a hold resolve once
    /// is its status, changed under its source's lock.
    fn entries(&self, from: Funds, to: Option<Funds>, at: DateTime<Utc>) -> Vec<OperationRecord> {
        let (status, amount) = match self.status {
            HoldStatus::Confirmed(amount) => (OperationStatus::Applied, amount),
            HoldStatus::Voided => (OperationStatus::Voided, self.amount),
            HoldStatus::Expired => (OperationStatus::Expired, self.amount),
            HoldStatus::Pending => return Vec::new(),
        };
        let entry = |wallet, kind, funds: Funds, counterparty: Option<WalletId>| OperationRecord {
            id: OperationId::generate(),
            wallet_id: wallet,
            kind,
            amount,
            status,
            balance_after: funds.balance(),
            available_after: funds.available(),
            created_at: at,
            transfer: counterparty.map(|counterparty| TransferLeg {
                transfer_id: self.id,
                counterparty,
            }),
            hold_id: Some(self.id),
            expires_at: None,
        };
        let source_kind = match self.to {
            Some(_) => OperationKind::TransferOut,
            None => OperationKind::Withdraw,
        };
        let mut entries = vec![entry(self.wallet, source_kind, from, self.to)];
        if let (Some(destination), Some(to)) = (self.to, to) {
            entries.push(entry(
                destination,
                OperationKind::TransferIn,
                to,
                Some(self.wallet),
            ));
        }
        entries
    }
}

/// Why a pending hold could not be resolved as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The destination of a confirmed transfer would pass the balance limit.
    Rejected(RejectReason),
    /// The funds do not hold the hold: a bug or a corrupted row.
    Inconsistent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Balance, MAX_MONEY};

    fn amount(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }

    fn funds(balance: u64, held: u64) -> Funds {
        Funds::new(Balance::new(balance).unwrap(), Balance::new(held).unwrap()).unwrap()
    }

    fn hold(to: Option<WalletId>, held: u64) -> HoldRecord {
        let at = Utc::now();
        let expires = Pending {
            timeout: NonZeroU32::new(60),
        }
        .expires_at(at);
        HoldRecord::placed(
            OperationId::generate(),
            WalletId::generate(),
            to,
            amount(held),
            expires,
            at,
        )
    }

    #[test]
    fn a_partial_confirmation_moves_part_and_releases_the_rest() {
        let hold = hold(None, 100);
        let resolved = hold
            .resolve(
                HoldAction::Confirm(amount(60)),
                funds(500, 100),
                None,
                Utc::now(),
            )
            .unwrap();
        assert_eq!(resolved.hold.status, HoldStatus::Confirmed(amount(60)));
        assert_eq!(resolved.from, funds(440, 0));
        let [entry] = resolved.entries.as_slice() else {
            panic!("a withdrawal's confirmation is one entry");
        };
        assert_eq!(
            (entry.kind, entry.status, entry.amount),
            (
                OperationKind::Withdraw,
                OperationStatus::Applied,
                amount(60)
            )
        );
        assert_eq!(entry.hold_id, Some(hold.id));
    }

    #[test]
    fn a_confirmed_transfer_hold_credits_its_destination() {
        let destination = WalletId::generate();
        let hold = hold(Some(destination), 30);
        let resolved = hold
            .resolve(
                HoldAction::Confirm(amount(30)),
                funds(100, 30),
                Some(funds(5, 0)),
                Utc::now(),
            )
            .unwrap();
        assert_eq!(resolved.from, funds(70, 0));
        assert_eq!(resolved.to, Some(funds(35, 0)));
        let kinds: Vec<_> = resolved.entries.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [OperationKind::TransferOut, OperationKind::TransferIn]
        );
        assert_eq!(resolved.entries[1].wallet_id, destination);
    }

    #[test]
    fn a_confirmation_past_the_destinations_limit_is_refused() {
        let hold = hold(Some(WalletId::generate()), 2);
        let refused = hold.resolve(
            HoldAction::Confirm(amount(2)),
            funds(10, 2),
            Some(funds(MAX_MONEY - 1, 0)),
            Utc::now(),
        );
        assert_eq!(
            refused,
            Err(Refused::Rejected(RejectReason::BalanceLimitExceeded))
        );
    }

    #[test]
    fn a_void_releases_the_whole_hold_and_keeps_the_balance() {
        let hold = hold(None, 100);
        let resolved = hold
            .resolve(HoldAction::Void, funds(500, 150), None, Utc::now())
            .unwrap();
        assert_eq!(resolved.from, funds(500, 50));
        assert_eq!(resolved.entries[0].status, OperationStatus::Voided);
        assert_eq!(resolved.entries[0].amount, amount(100));
        assert!(resolved.hold.resolved_by(HoldAction::Void));
        assert!(!resolved.hold.resolved_by(HoldAction::Confirm(amount(100))));
    }

    #[test]
    fn only_the_same_confirmation_replays() {
        let confirmed = HoldRecord {
            status: HoldStatus::Confirmed(amount(7)),
            ..hold(None, 10)
        };
        assert!(confirmed.resolved_by(HoldAction::Confirm(amount(7))));
        assert!(!confirmed.resolved_by(HoldAction::Confirm(amount(8))));
        assert!(!confirmed.resolved_by(HoldAction::Void));
    }

    #[test]
    fn a_confirmation_for_more_than_is_held_is_not_a_decision() {
        let hold = hold(None, 10);
        assert_eq!(
            HoldDecision::confirm(hold.terms(), Some(amount(11))),
            Err(ExceedsHold { held: amount(10) })
        );
        let whole = HoldDecision::confirm(hold.terms(), None).unwrap();
        assert_eq!(whole.action, HoldAction::Confirm(amount(10)));
    }

    #[test]
    fn a_hold_is_due_at_its_expiry() {
        let hold = hold(None, 10);
        let expires = hold.expires_at.unwrap();
        assert!(!hold.is_due(expires - TimeDelta::microseconds(1)));
        assert!(hold.is_due(expires));
    }

    #[test]
    fn the_timeout_is_read_back_from_the_stored_times() {
        let at = Utc::now();
        let pending = Pending {
            timeout: NonZeroU32::new(90),
        };
        assert_eq!(Pending::of_record(at, pending.expires_at(at)), pending);
        assert_eq!(Pending::of_record(at, None), Pending { timeout: None });
    }
}
