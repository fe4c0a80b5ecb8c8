//! How busy each wallet is: requests in flight per wallet, approximately.
//!
//! A fixed table of counters indexed by a hash of the wallet id: two atomic additions per
//! request, no map, no lock, no memory that grows with the number of wallets. Two wallets
//! may share a counter; that only blurs a routing choice, never a balance.

use crate::domain::WalletId;
use std::sync::atomic::{AtomicU32, Ordering};

/// Counters in the table: enough that the few hot wallets of a workload rarely share one.
const COUNTERS: usize = 4096;

#[derive(Debug)]
pub struct Heat {
    counters: Box<[AtomicU32]>,
}

impl Default for Heat {
    fn default() -> Self {
        Self {
            counters: (0..COUNTERS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl Heat {
    /// Requests in flight on `wallet` (and on any wallet sharing its counter).
    pub fn of(&self, wallet: WalletId) -> u32 {
        self.counter(wallet).load(Ordering::Relaxed)
    }

    /// Counts a request on its wallet, or a transfer's two, until the returned guard is
    /// dropped. No allocation: this runs on every request.
    pub fn enter(&self, wallet: WalletId, other: Option<WalletId>) -> InFlight<'_> {
        let counters = [Some(wallet), other].map(|wallet| wallet.map(|w| self.counter(w)));
        for counter in counters.iter().flatten() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        InFlight { counters }
    }

    fn counter(&self, wallet: WalletId) -> &AtomicU32 {
        let bits = wallet.as_uuid().as_u128();
        let mixed = (bits as u64) ^ ((bits >> 64) as u64);
        &self.counters[(mixed % COUNTERS as u64) as usize]
    }
}

/// One request's place in the counters; leaving it (answered or abandoned) frees it.
pub struct InFlight<'a> {
    counters: [Option<&'a AtomicU32>; 2],
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        for counter in self.counters.iter().flatten() {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wallet_is_busy_while_its_requests_are_in_flight() {
        let heat = Heat::default();
        let (hot, cold) = (WalletId::generate(), WalletId::generate());
        let first = heat.enter(hot, None);
        let second = heat.enter(hot, Some(cold));
        assert!(heat.of(hot) >= 2);
        drop(first);
        drop(second);
        assert_eq!(heat.of(hot), 0);
        assert_eq!(heat.of(cold), 0);
    }
}
