//! Money in integer minor units. A value that exists is a valid value: the constructors are
//! the only way in, so the ledger never has to re-check a range.

use std::fmt;

/// Largest amount or balance: 2^53 - 1, the largest integer every JSON client reads exactly.
pub const MAX_MONEY: u64 = (1 << 53) - 1;

/// Why a number is not valid money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be at least 1")]
    NotPositive,
    #[error("must not exceed {MAX_MONEY}")]
    TooLarge,
}

/// A positive quantity moved by one operation: `1 ..= MAX_MONEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

impl Amount {
    pub fn new(value: u64) -> Result<Self, MoneyError> {
        match value {
            0 => Err(MoneyError::NotPositive),
            v if v > MAX_MONEY => Err(MoneyError::TooLarge),
            v => Ok(Self(v)),
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<i64> for Amount {
    type Error = MoneyError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u64::try_from(value)
            .map_err(|_| MoneyError::NotPositive)
            .and_then(Self::new)
    }
}

impl From<Amount> for i64 {
    fn from(amount: Amount) -> Self {
        // MAX_MONEY < i64::MAX, so the conversion is lossless.
        amount.0 as i64
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a wallet holds: `0 ..= MAX_MONEY`. Arithmetic that would leave the range fails
/// instead of wrapping or saturating, which is how overdrafts and overflows are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Balance(u64);

impl Balance {
    pub const ZERO: Self = Self(0);

    pub fn new(value: u64) -> Result<Self, MoneyError> {
        if value > MAX_MONEY {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Self(value))
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// `None` when the result would pass `MAX_MONEY`.
    pub fn checked_add(self, amount: Amount) -> Option<Self> {
        Self::new(self.0 + amount.0).ok()
    }

    /// `None` when the result would go below zero.
    pub fn checked_sub(self, amount: Amount) -> Option<Self> {
        self.0.checked_sub(amount.0).map(Self)
    }
}

impl TryFrom<i64> for Balance {
    type Error = MoneyError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u64::try_from(value)
            .map_err(|_| MoneyError::TooLarge)
            .and_then(Self::new)
    }
}

impl From<Balance> for i64 {
    fn from(balance: Balance) -> Self {
        balance.0 as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amount_rejects_zero_and_values_past_the_maximum() {
        assert_eq!(Amount::new(0), Err(MoneyError::NotPositive));
        assert_eq!(Amount::new(MAX_MONEY + 1), Err(MoneyError::TooLarge));
        assert_eq!(Amount::try_from(-1_i64), Err(MoneyError::NotPositive));
        assert_eq!(Amount::new(MAX_MONEY).map(Amount::get), Ok(MAX_MONEY));
    }

    #[test]
    fn balance_refuses_to_go_negative_or_past_the_maximum() {
        let one = Amount::new(1).unwrap();
        assert_eq!(Balance::ZERO.checked_sub(one), None);
        assert_eq!(Balance::new(MAX_MONEY).unwrap().checked_add(one), None);
        assert_eq!(Balance::try_from(-5_i64), Err(MoneyError::TooLarge));
    }

    proptest! {
        #[test]
        fn amount_accepts_exactly_the_valid_range(value in any::<u64>()) {
            prop_assert_eq!(Amount::new(value).is_ok(), (1..=MAX_MONEY).contains(&value));
        }

        #[test]
        fn add_then_sub_restores_the_balance(start in 0..=MAX_MONEY, amount in 1..=MAX_MONEY) {
            let start = Balance::new(start).unwrap();
            let amount = Amount::new(amount).unwrap();
            match start.checked_add(amount) {
                Some(after) => prop_assert_eq!(after.checked_sub(amount), Some(start)),
                None => prop_assert!(start.get() + amount.get() > MAX_MONEY),
            }
        }
    }
}
