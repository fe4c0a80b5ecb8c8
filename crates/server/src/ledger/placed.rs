//! The holds placed through this instance and not yet resolved: what a confirmation or a
//! void needs to find its hold's writer, without a read of the hold first. Placing and
//! resolving a hold is usually one client talking to one instance, so the common case costs
//! a map lookup; a hold this instance does not know (placed elsewhere, before a restart, or
//! past the size bound) is read from the database instead. A hold's terms never change, so an
//! entry is never wrong, only possibly kept a little longer than needed.

use crate::domain::{HoldTerms, OperationId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most holds remembered: about 10 MB. Past it, new holds are not remembered.
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub struct Placed {
    holds: Mutex<HashMap<OperationId, HoldTerms>>,
}

impl Placed {
    pub fn remember(&self, hold: HoldTerms) {
        let mut holds = self.lock();
        if holds.len() < CAPACITY {
            holds.insert(hold.id, hold);
        }
    }

    pub fn forget(&self, id: OperationId) {
        self.lock().remove(&id);
    }

    pub fn get(&self, id: OperationId) -> Option<HoldTerms> {
        self.lock().get(&id).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OperationId, HoldTerms>> {
        // The map holds plain values: one a panicking thread left behind is still whole.
        self.holds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Amount, WalletId};

    fn terms() -> HoldTerms {
        HoldTerms {
            id: OperationId::new_random(),
            wallet: WalletId::new_random(),
            to: None,
            amount: Amount::new(5).unwrap(),
        }
    }

    #[test]
    fn a_remembered_hold_is_found_until_forgotten() {
        let placed = Placed::default();
        let hold = terms();
        placed.remember(hold);
        assert_eq!(placed.get(hold.id), Some(hold));
        placed.forget(hold.id);
        assert_eq!(placed.get(hold.id), None);
    }

    #[test]
    fn past_its_capacity_nothing_more_is_remembered() {
        let placed = Placed::default();
        for _ in 0..CAPACITY {
            placed.remember(terms());
        }
        let late = terms();
        placed.remember(late);
        assert_eq!(placed.get(late.id), None);
    }
}
