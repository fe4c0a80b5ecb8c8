//! The funds a writer's own commits left in its wallets. A batch whose wallets are all
//! remembered is decided on them without locking and reading the wallets first, and is
//! written in one statement that is its whole transaction: one round trip instead of four
//! (begin, lock, write, commit). The statement locks the wallets itself and checks that they
//! still hold these funds; only another writer (of this instance, for a transfer, or of
//! another) writing the same wallets can have changed them, and then the batch is decided
//! again the usual way. So a remembered value that is wrong costs a retry, never a wrong
//! balance. A wallet found changed is written by others too: for its next few batches here
//! its funds are not remembered, so that they are locked and read rather than guessed at and
//! retried every time.

use crate::domain::{Funds, WalletId};
use std::collections::HashMap;

/// Most wallets remembered per writer: a few MB. Past it the memory starts over.
const CAPACITY: usize = 100_000;

/// Batches of a wallet found changed by others that lock and read it before it is
/// remembered again.
const BACKOFF: u32 = 64;

#[derive(Debug, Default)]
pub struct Remembered {
    funds: HashMap<WalletId, Funds>,
    /// Wallets found changed by others, and how many more of their commits here go
    /// unremembered.
    shared: HashMap<WalletId, u32>,
}

impl Remembered {
    /// The funds of every one of `wallets`, in their order, or `None` if one of them is not
    /// remembered.
    pub fn all(&self, wallets: &[WalletId]) -> Option<Vec<(WalletId, Funds)>> {
        wallets
            .iter()
            .map(|id| self.funds.get(id).map(|&funds| (*id, funds)))
            .collect()
    }

    /// Funds a committed batch read or wrote.
    pub fn commit(&mut self, funds: impl IntoIterator<Item = (WalletId, Funds)>) {
        for (id, funds) in funds {
            if let Some(left) = self.shared.get_mut(&id) {
                *left -= 1;
                if *left > 0 {
                    continue;
                }
                self.shared.remove(&id);
            }
            if self.funds.len() >= CAPACITY && !self.funds.contains_key(&id) {
                self.funds.clear();
            }
            self.funds.insert(id, funds);
        }
    }

    /// A batch decided on the remembered funds of `wallets` found one of them changed by
    /// others (which one, the statement does not tell).
    pub fn changed_by_others(&mut self, wallets: &[WalletId]) {
        if self.shared.len() + wallets.len() > CAPACITY {
            self.shared.clear();
        }
        for id in wallets {
            self.funds.remove(id);
            self.shared.insert(*id, BACKOFF);
        }
    }

    /// After a failure whose outcome is unknown: forget everything rather than guess.
    pub fn forget(&mut self) {
        self.funds.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Balance;

    fn funds(balance: u64) -> Funds {
        Funds::posted(Balance::new(balance).unwrap())
    }

    #[test]
    fn all_is_none_unless_every_wallet_is_remembered() {
        let (a, b) = (WalletId::generate(), WalletId::generate());
        let mut remembered = Remembered::default();
        remembered.commit([(a, funds(5))]);
        assert_eq!(remembered.all(&[a]), Some(vec![(a, funds(5))]));
        assert_eq!(remembered.all(&[a, b]), None);
        remembered.commit([(b, funds(7)), (a, funds(6))]);
        assert_eq!(
            remembered.all(&[a, b]),
            Some(vec![(a, funds(6)), (b, funds(7))])
        );
        remembered.forget();
        assert_eq!(remembered.all(&[a]), None);
    }

    #[test]
    fn a_wallet_changed_by_others_is_remembered_again_only_after_its_backoff() {
        let (shared, other) = (WalletId::generate(), WalletId::generate());
        let mut remembered = Remembered::default();
        remembered.commit([(shared, funds(1)), (other, funds(1))]);
        remembered.changed_by_others(&[shared]);
        assert_eq!(remembered.all(&[shared]), None);
        for _ in 1..BACKOFF {
            remembered.commit([(shared, funds(2)), (other, funds(2))]);
            assert_eq!(remembered.all(&[shared]), None);
        }
        assert!(remembered.all(&[other]).is_some());
        remembered.commit([(shared, funds(3))]);
        assert_eq!(remembered.all(&[shared]), Some(vec![(shared, funds(3))]));
    }

    #[test]
    fn memory_starts_over_past_its_capacity() {
        let mut remembered = Remembered::default();
        let first = WalletId::generate();
        remembered.commit([(first, funds(1))]);
        remembered.commit((1..CAPACITY).map(|_| (WalletId::generate(), funds(1))));
        assert!(remembered.all(&[first]).is_some());
        let last = WalletId::generate();
        remembered.commit([(last, funds(2))]);
        assert_eq!(remembered.all(&[first]), None);
        assert_eq!(remembered.all(&[last]), Some(vec![(last, funds(2))]));
    }
}
