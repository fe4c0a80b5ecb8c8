//! The holds placed through this instance and not yet resolved, as they were placed: what a
//! confirmation or a void needs to find its hold's writer, and what that writer needs to
//! decide it, without a read of the hold first. Placing and resolving a hold is usually one
//! client talking to one instance, so the common case costs a map lookup; a hold this
//! instance does not know (placed elsewhere, before a restart, or past the size bound) is
//! read from the database instead. All that can have changed about a remembered hold is
//! whether it is still pending (another instance may have resolved it, or this one just
//! did): the writer's update of the hold checks exactly that.

use crate::domain::{HoldRecord, OperationId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most holds remembered: about 10 MB. Past it, new holds are not remembered.
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub struct Placed {
    holds: Mutex<HashMap<OperationId, HoldRecord>>,
}

impl Placed {
    pub fn remember(&self, hold: HoldRecord) {
        let mut holds = self.lock();
        if holds.len() < CAPACITY {
            holds.insert(hold.id, hold);
        }
    }

    pub fn forget(&self, id: OperationId) {
        self.lock().remove(&id);
    }

    pub fn get(&self, id: OperationId) -> Option<HoldRecord> {
        self.lock().get(&id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OperationId, HoldRecord>> {
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

    fn hold() -> HoldRecord {
        HoldRecord::placed(
            OperationId::generate(),
            WalletId::generate(),
            None,
            Amount::new(5).unwrap(),
            None,
            chrono::Utc::now(),
        )
    }

    #[test]
    fn a_remembered_hold_is_found_until_forgotten() {
        let placed = Placed::default();
        let hold = hold();
        placed.remember(hold.clone());
        assert_eq!(placed.get(hold.id), Some(hold.clone()));
        placed.forget(hold.id);
        assert_eq!(placed.get(hold.id), None);
    }

    #[test]
    fn past_its_capacity_nothing_more_is_remembered() {
        let placed = Placed::default();
        for _ in 0..CAPACITY {
            placed.remember(hold());
        }
        let late = hold();
        placed.remember(late.clone());
        assert_eq!(placed.get(late.id), None);
    }
}
