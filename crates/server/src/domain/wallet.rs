//! A wallet as stored: its balance and when it last changed.

use super::{Balance, WalletId};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    pub balance: Balance,
    pub created_at: DateTime<Utc>,
    /// When the balance last changed.
    pub updated_at: DateTime<Utc>,
}
