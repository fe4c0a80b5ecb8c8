//! Deciding one batch, in memory, after its wallets are locked.
//!
//! Pure: given the locked balances and the operations already stored under the batch's ids,
//! it decides every request in arrival order, exactly as if they had come one at a time.

use super::{LedgerError, Outcome};
use crate::domain::{
    Balance, OperationId, OperationKind, OperationRecord, OperationRequest, OperationStatus,
    WalletId,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Everything a batch's transaction must write, and the answer for each request.
#[derive(Debug)]
pub struct Plan {
    /// One per request, in arrival order.
    pub verdicts: Vec<Result<Outcome, LedgerError>>,
    /// Indexes of the requests whose records are new and must be inserted.
    pub inserts: Vec<usize>,
    /// Final balance of every wallet that changed.
    pub balances: Vec<(WalletId, Balance)>,
}

/// Decides `requests` in order against `balances` (the locked wallets that existed before
/// this batch) and `stored` (operations already recorded under some of the requests' ids).
/// A wallet missing from `balances` exists from its first deposit on: a withdrawal that
/// arrives before it is not found, even when a later deposit in the batch creates it.
pub fn plan<'a>(
    requests: impl IntoIterator<Item = &'a OperationRequest>,
    balances: &HashMap<WalletId, Balance>,
    stored: &HashMap<OperationId, OperationRecord>,
    at: DateTime<Utc>,
) -> Plan {
    let mut current = balances.clone();
    let mut first_in_batch: HashMap<OperationId, usize> = HashMap::new();
    let mut verdicts: Vec<Result<Outcome, LedgerError>> = Vec::new();
    let mut inserts = Vec::new();

    for request in requests {
        let index = verdicts.len();
        let earlier = stored
            .get(&request.id)
            .or_else(|| {
                let first = *first_in_batch.get(&request.id)?;
                verdicts[first].as_ref().ok().map(|outcome| &outcome.record)
            })
            .cloned();
        let verdict = match earlier {
            Some(record) if record.matches(request) => Ok(Outcome {
                record,
                replayed: true,
            }),
            Some(_) => Err(LedgerError::IdempotencyKeyReused),
            None if request.kind == OperationKind::Deposit
                || current.contains_key(&request.wallet_id) =>
            {
                // A deposit brings a missing wallet into being, from this point in the order.
                let balance = current.entry(request.wallet_id).or_insert(Balance::ZERO);
                let record = request.decide(*balance, at);
                if record.status == OperationStatus::Applied {
                    *balance = record.balance_after;
                }
                first_in_batch.insert(request.id, index);
                inserts.push(index);
                Ok(Outcome {
                    record,
                    replayed: false,
                })
            }
            None => Err(LedgerError::WalletNotFound),
        };
        verdicts.push(verdict);
    }

    let mut changed: Vec<_> = current
        .into_iter()
        .filter(|(id, balance)| balances.get(id) != Some(balance))
        .collect();
    changed.sort_unstable_by_key(|(id, _)| *id);
    Plan {
        verdicts,
        inserts,
        balances: changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Amount, RejectReason};
    use proptest::prelude::*;

    fn request(wallet: WalletId, kind: OperationKind, amount: u64) -> OperationRequest {
        OperationRequest {
            id: OperationId::new_random(),
            wallet_id: wallet,
            kind,
            amount: Amount::new(amount).unwrap(),
            idempotency_key: None,
        }
    }

    fn funded(wallet: WalletId, amount: u64) -> HashMap<WalletId, Balance> {
        HashMap::from([(wallet, Balance::new(amount).unwrap())])
    }

    #[test]
    fn requests_are_decided_in_arrival_order() {
        let wallet = WalletId::new_random();
        let requests = [
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Deposit, 10),
        ];
        let plan = plan(&requests, &funded(wallet, 100), &HashMap::new(), Utc::now());
        let statuses: Vec<_> = plan
            .verdicts
            .iter()
            .map(|v| v.as_ref().unwrap().record.status)
            .collect();
        let rejected = OperationStatus::Rejected(RejectReason::InsufficientFunds);
        assert_eq!(
            statuses,
            [
                OperationStatus::Applied,
                OperationStatus::Applied,
                rejected,
                OperationStatus::Applied
            ]
        );
        assert_eq!(plan.inserts, [0, 1, 2, 3]);
        assert_eq!(plan.balances, [(wallet, Balance::new(10).unwrap())]);
    }

    #[test]
    fn a_stored_operation_is_replayed_not_applied_again() {
        let wallet = WalletId::new_random();
        let deposit = request(wallet, OperationKind::Deposit, 5);
        let stored_record: OperationRecord = deposit.decide(Balance::ZERO, Utc::now());
        let stored = HashMap::from([(deposit.id, stored_record.clone())]);
        let plan = plan([&deposit], &funded(wallet, 5), &stored, Utc::now());
        let outcome = plan.verdicts[0].as_ref().unwrap();
        assert!(outcome.replayed);
        assert_eq!(outcome.record, stored_record);
        assert!(plan.inserts.is_empty());
        assert!(plan.balances.is_empty());
    }

    #[test]
    fn a_duplicate_in_the_same_batch_gets_the_first_ones_answer() {
        let wallet = WalletId::new_random();
        let first = request(wallet, OperationKind::Deposit, 5);
        let plan = plan(
            [&first, &first],
            &funded(wallet, 0),
            &HashMap::new(),
            Utc::now(),
        );
        let [a, b] = [&plan.verdicts[0], &plan.verdicts[1]].map(|v| v.as_ref().unwrap());
        assert_eq!(a.record, b.record);
        assert!(!a.replayed && b.replayed);
        assert_eq!(plan.inserts, [0]);
        assert_eq!(plan.balances, [(wallet, Balance::new(5).unwrap())]);
    }

    #[test]
    fn the_same_id_with_another_payload_is_refused() {
        let wallet = WalletId::new_random();
        let first = request(wallet, OperationKind::Deposit, 5);
        let other = OperationRequest {
            amount: Amount::new(6).unwrap(),
            ..first.clone()
        };
        let plan = plan(
            [&first, &other],
            &funded(wallet, 0),
            &HashMap::new(),
            Utc::now(),
        );
        assert!(plan.verdicts[0].is_ok());
        assert!(matches!(
            plan.verdicts[1],
            Err(LedgerError::IdempotencyKeyReused)
        ));
    }

    #[test]
    fn a_withdrawal_from_a_missing_wallet_is_not_found_and_not_recorded() {
        let withdrawal = request(WalletId::new_random(), OperationKind::Withdraw, 1);
        let plan = plan([&withdrawal], &HashMap::new(), &HashMap::new(), Utc::now());
        assert!(matches!(plan.verdicts[0], Err(LedgerError::WalletNotFound)));
        assert!(plan.inserts.is_empty());
    }

    #[test]
    fn a_withdrawal_before_the_deposit_that_creates_the_wallet_is_not_found() {
        let wallet = WalletId::new_random();
        let withdrawal = request(wallet, OperationKind::Withdraw, 1);
        let deposit = request(wallet, OperationKind::Deposit, 3);
        let plan = plan(
            [&withdrawal, &deposit],
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert!(matches!(plan.verdicts[0], Err(LedgerError::WalletNotFound)));
        assert_eq!(plan.inserts, [1]);
        assert_eq!(plan.balances, [(wallet, Balance::new(3).unwrap())]);
    }

    proptest! {
        /// One batch must decide exactly like a teller who sees the requests one by one.
        #[test]
        fn a_batch_decides_like_one_request_at_a_time(
            start in 0_u64..200,
            ops in prop::collection::vec((any::<bool>(), 1_u64..100), 1..60),
        ) {
            let wallet = WalletId::new_random();
            let requests: Vec<_> = ops
                .iter()
                .map(|&(deposit, amount)| {
                    let kind = if deposit { OperationKind::Deposit } else { OperationKind::Withdraw };
                    request(wallet, kind, amount)
                })
                .collect();
            let plan = plan(&requests, &funded(wallet, start), &HashMap::new(), Utc::now());

            let mut model = start;
            for (&(deposit, amount), verdict) in ops.iter().zip(&plan.verdicts) {
                let record = &verdict.as_ref().unwrap().record;
                let accepted = deposit || amount <= model;
                if accepted {
                    model = if deposit { model + amount } else { model - amount };
                }
                prop_assert_eq!(record.status == OperationStatus::Applied, accepted);
                prop_assert_eq!(record.balance_after.get(), model);
            }
            let expected_changes = if model == start { 0 } else { 1 };
            prop_assert_eq!(plan.balances.len(), expected_changes);
        }
    }
}
