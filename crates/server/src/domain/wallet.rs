//! A wallet as stored, and the money the ledger decides on: its balance and what holds
//! reserve of it.

use super::{Amount, Balance, RejectReason, WalletId};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    pub funds: Funds,
    pub created_at: DateTime<Utc>,
    /// When the balance or the held amount last changed.
    pub updated_at: DateTime<Utc>,
}

/// A wallet's posted balance and the part of it that pending holds reserve. `held` never
/// exceeds `balance`: a hold takes only what is available, and a withdrawal or a transfer
/// only what no hold reserves, so `available` cannot go negative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Funds {
    balance: Balance,
    held: Balance,
}

/// Funds whose held part is larger than their balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("held {held} exceeds balance {balance}")]
pub struct HeldExceedsBalance {
    pub balance: u64,
    pub held: u64,
}

impl Funds {
    pub fn new(balance: Balance, held: Balance) -> Result<Self, HeldExceedsBalance> {
        if held > balance {
            return Err(HeldExceedsBalance {
                balance: balance.get(),
                held: held.get(),
            });
        }
        Ok(Self { balance, held })
    }

    /// Funds with nothing held.
    pub fn posted(balance: Balance) -> Self {
        Self {
            balance,
            held: Balance::ZERO,
        }
    }

    pub fn balance(self) -> Balance {
        self.balance
    }

    pub fn held(self) -> Balance {
        self.held
    }

    /// What a withdrawal, a transfer or a new hold may take.
    pub fn available(self) -> Balance {
        Balance::new(self.balance.get() - self.held.get()).unwrap_or(Balance::ZERO)
    }

    /// Money in, up to the balance limit.
    pub fn deposit(self, amount: Amount) -> Result<Self, RejectReason> {
        let balance = self
            .balance
            .checked_add(amount)
            .ok_or(RejectReason::BalanceLimitExceeded)?;
        Ok(Self { balance, ..self })
    }

    /// Money out, from what no hold reserves.
    pub fn withdraw(self, amount: Amount) -> Result<Self, RejectReason> {
        self.available()
            .checked_sub(amount)
            .ok_or(RejectReason::InsufficientFunds)?;
        Ok(Self {
            balance: self.balance.checked_sub(amount).unwrap_or(Balance::ZERO),
            ..self
        })
    }

    /// Reserves `amount` of what is available; the balance stays.
    pub fn hold(self, amount: Amount) -> Result<Self, RejectReason> {
        self.available()
            .checked_sub(amount)
            .ok_or(RejectReason::InsufficientFunds)?;
        Ok(Self {
            held: self.held.checked_add(amount).unwrap_or(self.balance),
            ..self
        })
    }

    /// Gives back a reservation of `amount`; `None` when less than that is held, which a
    /// consistent ledger never asks for.
    pub fn release(self, amount: Amount) -> Option<Self> {
        Some(Self {
            held: self.held.checked_sub(amount)?,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funds(balance: u64, held: u64) -> Funds {
        Funds::new(Balance::new(balance).unwrap(), Balance::new(held).unwrap()).unwrap()
    }

    fn amount(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }

    #[test]
    fn held_money_cannot_be_withdrawn() {
        let wallet = funds(100, 60);
        assert_eq!(wallet.available(), Balance::new(40).unwrap());
        assert_eq!(
            wallet.withdraw(amount(41)),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(wallet.withdraw(amount(40)), Ok(funds(60, 60)));
    }

    #[test]
    fn a_hold_takes_only_what_is_available_and_keeps_the_balance() {
        let wallet = funds(100, 60);
        assert_eq!(
            wallet.hold(amount(41)),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(wallet.hold(amount(40)), Ok(funds(100, 100)));
    }

    #[test]
    fn releasing_more_than_is_held_is_refused() {
        assert_eq!(funds(100, 60).release(amount(60)), Some(funds(100, 0)));
        assert_eq!(funds(100, 60).release(amount(61)), None);
    }

    #[test]
    fn held_past_the_balance_is_not_funds() {
        let over = Funds::new(Balance::new(5).unwrap(), Balance::new(6).unwrap());
        assert_eq!(
            over,
            Err(HeldExceedsBalance {
                balance: 5,
                held: 6
            })
        );
    }
}
