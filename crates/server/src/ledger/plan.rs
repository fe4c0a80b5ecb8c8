//! Deciding one batch, in memory, after its wallets are locked.
//!
//! Pure: given the locked funds, the records already stored under the batch's ids and the
//! holds its decisions name, it decides every request in arrival order, exactly as if they
//! had come one at a time.

use super::{LedgerError, Outcome, Record, Request};
use crate::domain::{
    Funds, HoldAction, HoldDecision, HoldRecord, HoldStatus, OperationId, OperationKind,
    OperationRecord, Refused, WalletId,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::ops::Range;

/// Everything a batch's transaction must write, and the answer for each request.
#[derive(Debug)]
pub struct Plan {
    /// One per request, in arrival order.
    pub verdicts: Vec<Result<Outcome, LedgerError>>,
    /// What the batch records, in the order it was decided, so that each wallet's history
    /// lists its entries in that order too.
    pub changes: Vec<Change>,
    /// Every hold placed or resolved in the batch, as it stands at the end of it.
    pub holds: Vec<HoldRecord>,
    /// Final funds of every wallet that changed.
    pub funds: Vec<(WalletId, Funds)>,
}

/// One thing a batch records.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The new record of the request at this index.
    Decided(usize),
    /// A history entry of a hold resolved in the batch.
    Resolution(OperationRecord),
    /// A hold resolved in the batch, as that left it (after its entries).
    Resolved(HoldRecord),
}

/// Decides `requests` in order against `funds` (the locked wallets that existed before this
/// batch), `stored` (what is already recorded under some of the requests' ids) and `holds`
/// (the stored holds the batch's decisions name). A wallet missing from `funds` exists from
/// its first deposit on: a withdrawal or a transfer that arrives before it does not find it,
/// even when a later deposit in the batch creates it. Each range of `atomic` (ascending,
/// apart) succeeds as a whole or changes nothing: the requests after it are decided as if
/// it had not been there.
pub fn plan<'a>(
    requests: impl IntoIterator<Item = &'a Request>,
    atomic: &[Range<usize>],
    funds: &HashMap<WalletId, Funds>,
    stored: &HashMap<OperationId, Record>,
    holds: &HashMap<OperationId, HoldRecord>,
    at: DateTime<Utc>,
) -> Plan {
    let mut batch = Batch {
        funds: funds.clone(),
        holds: holds.clone(),
        changed_holds: Vec::new(),
        changes: Vec::new(),
        at,
    };
    let mut first_in_batch: HashMap<OperationId, usize> = HashMap::new();
    let mut verdicts: Vec<Result<Outcome, LedgerError>> = Vec::new();
    let mut groups = atomic.iter().peekable();
    let mut checkpoint = None;

    for (index, request) in requests.into_iter().enumerate() {
        if groups.peek().is_some_and(|group| group.start == index) {
            checkpoint = Some(batch.checkpoint());
        }
        decide_one(
            &mut batch,
            &mut verdicts,
            &mut first_in_batch,
            stored,
            request,
        );
        if let Some(group) = groups.next_if(|group| group.end == index + 1) {
            let Some(before) = checkpoint.take() else {
                unreachable!("a group ends after it starts")
            };
            let group = group.clone();
            if !verdicts[group.clone()].iter().all(succeeded) {
                batch.restore(before);
                first_in_batch.retain(|_, first| !group.contains(first));
                for verdict in &mut verdicts[group] {
                    if succeeded(verdict) {
                        *verdict = Err(LedgerError::LinkedItemFailed);
                    }
                }
            }
        }
    }

    let mut changed: Vec<_> = batch
        .funds
        .into_iter()
        .filter(|(id, after)| funds.get(id) != Some(after))
        .collect();
    changed.sort_unstable_by_key(|(id, _)| *id);
    let holds = batch
        .changed_holds
        .iter()
        .filter_map(|id| batch.holds.remove(id))
        .collect();
    Plan {
        verdicts,
        changes: batch.changes,
        holds,
        funds: changed,
    }
}

/// Decides the request at `verdicts.len()` and keeps its verdict.
fn decide_one(
    batch: &mut Batch,
    verdicts: &mut Vec<Result<Outcome, LedgerError>>,
    first_in_batch: &mut HashMap<OperationId, usize>,
    stored: &HashMap<OperationId, Record>,
    request: &Request,
) {
    let index = verdicts.len();
    let Some(id) = request.id() else {
        let Request::Hold(decision) = request else {
            unreachable!("only a decision about a hold has no id of its own")
        };
        verdicts.push(batch.decide_hold(decision));
        return;
    };
    let earlier = stored
        .get(&id)
        .or_else(|| {
            let first = *first_in_batch.get(&id)?;
            verdicts[first].as_ref().ok().map(|outcome| &outcome.record)
        })
        .cloned();
    let taken = |id| stored.contains_key(&id) || first_in_batch.contains_key(&id);
    let verdict = match earlier {
        Some(record) if record.matches(request) => Ok(Outcome {
            record,
            replayed: true,
        }),
        Some(_) => Err(LedgerError::IdempotencyKeyReused),
        // A transfer's destination side is stored under an id derived from the
        // transfer's; one that names something else makes the transfer's id unusable.
        None if request.incoming_side().is_some_and(taken) => {
            Err(LedgerError::IdempotencyKeyReused)
        }
        None => batch.decide(request),
    };
    if let Ok(Outcome {
        record,
        replayed: false,
    }) = &verdict
    {
        for entry in record.entry_ids() {
            first_in_batch.insert(entry, index);
        }
        batch.changes.push(Change::Decided(index));
    }
    verdicts.push(verdict);
}

/// Whether a verdict counts as a success in an atomic batch: decided, and not a rejection.
fn succeeded(verdict: &Result<Outcome, LedgerError>) -> bool {
    verdict
        .as_ref()
        .is_ok_and(|outcome| !outcome.record.is_rejection())
}

/// The batch's state while its requests are decided one by one.
struct Batch {
    funds: HashMap<WalletId, Funds>,
    holds: HashMap<OperationId, HoldRecord>,
    /// Holds placed or resolved so far, each once, in the order they first changed.
    changed_holds: Vec<OperationId>,
    changes: Vec<Change>,
    at: DateTime<Utc>,
}

/// The batch's state before an atomic group, to go back to if the group fails.
struct Checkpoint {
    funds: HashMap<WalletId, Funds>,
    holds: HashMap<OperationId, HoldRecord>,
    changed_holds: usize,
    changes: usize,
}

impl Batch {
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            funds: self.funds.clone(),
            holds: self.holds.clone(),
            changed_holds: self.changed_holds.len(),
            changes: self.changes.len(),
        }
    }

    fn restore(&mut self, to: Checkpoint) {
        self.funds = to.funds;
        self.holds = to.holds;
        self.changed_holds.truncate(to.changed_holds);
        self.changes.truncate(to.changes);
    }

    /// Decides a request seen for the first time against the funds so far in the batch, and
    /// moves them.
    fn decide(&mut self, request: &Request) -> Result<Outcome, LedgerError> {
        let record = match request {
            Request::Operation(request) => {
                if request.kind != OperationKind::Deposit
                    && !self.funds.contains_key(&request.wallet_id)
                {
                    return Err(LedgerError::WalletNotFound(request.wallet_id));
                }
                // A deposit brings a missing wallet into being, from this point in the order.
                let funds = self.funds.entry(request.wallet_id).or_default();
                let (record, after) = request.decide(*funds, self.at);
                *funds = after;
                if let Some(hold) = record.placed_hold() {
                    self.keep(hold);
                }
                Record::Operation(record)
            }
            Request::Transfer(request) => {
                let [from, to] = [request.from(), request.to()].map(|wallet| {
                    self.funds
                        .get(&wallet)
                        .copied()
                        .ok_or(LedgerError::WalletNotFound(wallet))
                });
                let (record, from, to) = request.decide(from?, to?, self.at);
                self.funds.insert(record.from, from);
                self.funds.insert(record.to, to);
                if let Some(hold) = record.placed_hold() {
                    self.keep(hold);
                }
                Record::Transfer(record)
            }
            Request::Hold(decision) => return self.decide_hold(decision),
        };
        Ok(Outcome {
            record,
            replayed: false,
        })
    }

    /// Decides about a hold as it stands now: one past its time expires first, whatever
    /// the decision; one no longer pending answers only the decision that resolved it
    /// (a replay).
    fn decide_hold(&mut self, decision: &HoldDecision) -> Result<Outcome, LedgerError> {
        let mut hold = self
            .holds
            .get(&decision.hold)
            .filter(|hold| hold.wallet == decision.wallet)
            .cloned()
            .ok_or(LedgerError::HoldNotFound(decision.hold))?;
        let mut expired_now = false;
        if hold.is_due(self.at) {
            hold = self.resolve(&hold, HoldAction::Expire)?;
            expired_now = true;
        }
        if hold.status != HoldStatus::Pending {
            if !hold.resolved_by(decision.action) {
                return Err(LedgerError::HoldNotPending(hold.id));
            }
            let replayed = !(expired_now && decision.action == HoldAction::Expire);
            return Ok(Outcome {
                record: Record::Hold(hold),
                replayed,
            });
        }
        if decision.action == HoldAction::Expire {
            // Not due yet (another clock ran ahead): nothing to do.
            return Err(LedgerError::HoldNotPending(hold.id));
        }
        let hold = self.resolve(&hold, decision.action)?;
        Ok(Outcome {
            record: Record::Hold(hold),
            replayed: false,
        })
    }

    /// Resolves a pending hold: moves or releases its money, records its entries, and
    /// returns it as it now stands.
    fn resolve(
        &mut self,
        hold: &HoldRecord,
        action: HoldAction,
    ) -> Result<HoldRecord, LedgerError> {
        let funds_of = |wallet| self.funds.get(&wallet).copied();
        // Every decision locks its hold's source, and a confirmation its destination.
        let from = funds_of(hold.wallet).ok_or(LedgerError::Internal)?;
        let to = match (action, hold.to) {
            (HoldAction::Confirm(_), Some(to)) => Some(funds_of(to).ok_or(LedgerError::Internal)?),
            _ => None,
        };
        let resolved = match hold.resolve(action, from, to, self.at) {
            Ok(resolved) => resolved,
            Err(Refused::Rejected(_)) => {
                let (wallet, funds) = hold.to.zip(to).ok_or(LedgerError::Internal)?;
                return Err(LedgerError::DestinationLimit(wallet, funds.balance()));
            }
            // The writer reports it, if the batch is not decided again on what is stored.
            Err(Refused::Inconsistent) => return Err(LedgerError::Internal),
        };
        self.funds.insert(hold.wallet, resolved.from);
        if let (Some(wallet), Some(funds)) = (hold.to, resolved.to) {
            self.funds.insert(wallet, funds);
        }
        self.changes
            .extend(resolved.entries.into_iter().map(Change::Resolution));
        self.changes.push(Change::Resolved(resolved.hold.clone()));
        self.keep(resolved.hold.clone());
        Ok(resolved.hold)
    }

    /// Keeps a hold's new state for the batch to write.
    fn keep(&mut self, hold: HoldRecord) {
        if !self.changed_holds.contains(&hold.id) {
            self.changed_holds.push(hold.id);
        }
        self.holds.insert(hold.id, hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Amount, Balance, OperationRequest, OperationStatus, Pending, RejectReason, TransferRequest,
    };
    use proptest::prelude::*;

    fn operation(wallet: WalletId, kind: OperationKind, amount: u64) -> OperationRequest {
        OperationRequest {
            id: OperationId::generate(),
            wallet_id: wallet,
            kind,
            amount: Amount::new(amount).unwrap(),
            idempotency_key: None,
            pending: None,
        }
    }

    fn request(wallet: WalletId, kind: OperationKind, amount: u64) -> Request {
        Request::Operation(operation(wallet, kind, amount))
    }

    fn transfer(from: WalletId, to: WalletId, amount: u64) -> Request {
        let amount = Amount::new(amount).unwrap();
        let id = OperationId::generate();
        Request::Transfer(TransferRequest::new(id, from, to, amount, None).unwrap())
    }

    fn funds(amount: u64) -> Funds {
        Funds::posted(Balance::new(amount).unwrap())
    }

    fn funded(wallets: &[(WalletId, u64)]) -> HashMap<WalletId, Funds> {
        wallets
            .iter()
            .map(|&(wallet, amount)| (wallet, funds(amount)))
            .collect()
    }

    /// The indexes of the requests whose records the plan inserts.
    fn inserts(plan: &Plan) -> Vec<usize> {
        plan.changes
            .iter()
            .filter_map(|change| match change {
                Change::Decided(index) => Some(*index),
                Change::Resolution(_) | Change::Resolved(_) => None,
            })
            .collect()
    }

    /// The hold entries the plan inserts.
    fn resolutions(plan: &Plan) -> Vec<&OperationRecord> {
        plan.changes
            .iter()
            .filter_map(|change| match change {
                Change::Resolution(entry) => Some(entry),
                Change::Decided(_) | Change::Resolved(_) => None,
            })
            .collect()
    }

    fn decided(plan: &Plan, index: usize) -> &Record {
        &plan.verdicts[index].as_ref().unwrap().record
    }

    fn status(record: &Record) -> OperationStatus {
        match record {
            Record::Operation(record) => record.status,
            Record::Transfer(record) => record.status,
            Record::Hold(_) => panic!("no hold decisions here"),
        }
    }

    #[test]
    fn requests_are_decided_in_arrival_order() {
        let wallet = WalletId::generate();
        let requests = [
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Deposit, 10),
        ];
        let plan = plan(
            &requests,
            &[],
            &funded(&[(wallet, 100)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        let statuses: Vec<_> = (0..4).map(|i| status(decided(&plan, i))).collect();
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
        assert_eq!(inserts(&plan), [0, 1, 2, 3]);
        assert_eq!(plan.funds, [(wallet, funds(10))]);
    }

    #[test]
    fn a_failed_atomic_group_changes_nothing_and_what_follows_is_decided_without_it() {
        let wallet = WalletId::generate();
        let fresh = WalletId::generate();
        let requests = [
            request(wallet, OperationKind::Withdraw, 30),
            // The group: a deposit creating a wallet, a withdrawal that fits, one that does not.
            request(fresh, OperationKind::Deposit, 5),
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Withdraw, 50),
            request(wallet, OperationKind::Withdraw, 70),
        ];
        let group = 1..4;
        let plan = plan(
            &requests,
            std::slice::from_ref(&group),
            &funded(&[(wallet, 100)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        let linked = Err(LedgerError::LinkedItemFailed);
        assert_eq!(status(decided(&plan, 0)), OperationStatus::Applied);
        assert_eq!([&plan.verdicts[1], &plan.verdicts[2]], [&linked, &linked]);
        let rejected = OperationStatus::Rejected(RejectReason::InsufficientFunds);
        assert_eq!(
            status(decided(&plan, 3)),
            rejected,
            "the failure keeps its own answer"
        );
        assert_eq!(status(decided(&plan, 4)), OperationStatus::Applied);
        assert_eq!(inserts(&plan), [0, 4], "nothing of the group is recorded");
        assert_eq!(plan.funds, [(wallet, funds(0))]);
    }

    #[test]
    fn an_atomic_group_that_succeeds_is_decided_like_any_requests() {
        let wallet = WalletId::generate();
        let requests = [
            request(wallet, OperationKind::Withdraw, 60),
            request(wallet, OperationKind::Deposit, 10),
            request(wallet, OperationKind::Withdraw, 50),
        ];
        let plan = plan(
            &requests,
            &[0..2, 2..3],
            &funded(&[(wallet, 100)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert!(plan.verdicts.iter().all(succeeded));
        assert_eq!(inserts(&plan), [0, 1, 2]);
        assert_eq!(plan.funds, [(wallet, funds(0))]);
    }

    #[test]
    fn a_stored_operation_is_replayed_not_applied_again() {
        let wallet = WalletId::generate();
        let deposit = operation(wallet, OperationKind::Deposit, 5);
        let stored_record = Record::Operation(deposit.decide(Funds::default(), Utc::now()).0);
        let stored = HashMap::from([(deposit.id, stored_record.clone())]);
        let plan = plan(
            [&Request::Operation(deposit)],
            &[],
            &funded(&[(wallet, 5)]),
            &stored,
            &HashMap::new(),
            Utc::now(),
        );
        let outcome = plan.verdicts[0].as_ref().unwrap();
        assert!(outcome.replayed);
        assert_eq!(outcome.record, stored_record);
        assert!(inserts(&plan).is_empty());
        assert!(plan.funds.is_empty());
    }

    #[test]
    fn a_duplicate_in_the_same_batch_gets_the_first_ones_answer() {
        let wallet = WalletId::generate();
        let first = request(wallet, OperationKind::Deposit, 5);
        let plan = plan(
            [&first, &first],
            &[],
            &funded(&[(wallet, 0)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        let [a, b] = [&plan.verdicts[0], &plan.verdicts[1]].map(|v| v.as_ref().unwrap());
        assert_eq!(a.record, b.record);
        assert!(!a.replayed && b.replayed);
        assert_eq!(inserts(&plan), [0]);
        assert_eq!(plan.funds, [(wallet, funds(5))]);
    }

    #[test]
    fn the_same_id_with_another_payload_is_refused() {
        let wallet = WalletId::generate();
        let first = operation(wallet, OperationKind::Deposit, 5);
        let other = OperationRequest {
            amount: Amount::new(6).unwrap(),
            ..first.clone()
        };
        let requests = [Request::Operation(first), Request::Operation(other)];
        let plan = plan(
            &requests,
            &[],
            &funded(&[(wallet, 0)]),
            &HashMap::new(),
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
        let wallet = WalletId::generate();
        let withdrawal = request(wallet, OperationKind::Withdraw, 1);
        let plan = plan(
            [&withdrawal],
            &[],
            &HashMap::new(),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert_eq!(plan.verdicts[0], Err(LedgerError::WalletNotFound(wallet)));
        assert!(inserts(&plan).is_empty());
    }

    #[test]
    fn a_withdrawal_before_the_deposit_that_creates_the_wallet_is_not_found() {
        let wallet = WalletId::generate();
        let withdrawal = request(wallet, OperationKind::Withdraw, 1);
        let deposit = request(wallet, OperationKind::Deposit, 3);
        let plan = plan(
            [&withdrawal, &deposit],
            &[],
            &HashMap::new(),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert_eq!(plan.verdicts[0], Err(LedgerError::WalletNotFound(wallet)));
        assert_eq!(inserts(&plan), [1]);
        assert_eq!(plan.funds, [(wallet, funds(3))]);
    }

    #[test]
    fn a_transfer_moves_money_between_two_locked_wallets() {
        let (a, b) = (WalletId::generate(), WalletId::generate());
        let requests = [transfer(a, b, 30), request(b, OperationKind::Withdraw, 40)];
        let plan = plan(
            &requests,
            &[],
            &funded(&[(a, 100), (b, 10)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        let Record::Transfer(record) = decided(&plan, 0) else {
            panic!("a transfer is decided into a transfer record");
        };
        assert_eq!(record.status, OperationStatus::Applied);
        assert_eq!(status(decided(&plan, 1)), OperationStatus::Applied);
        let mut expected = vec![(a, funds(70)), (b, funds(0))];
        expected.sort_unstable_by_key(|(id, _)| *id);
        assert_eq!(plan.funds, expected);
    }

    #[test]
    fn a_transfer_names_the_first_missing_wallet_and_is_not_recorded() {
        let (a, b) = (WalletId::generate(), WalletId::generate());
        let plan = plan(
            [&transfer(a, b, 1), &transfer(b, a, 1)],
            &[],
            &funded(&[(a, 10)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert_eq!(plan.verdicts[0], Err(LedgerError::WalletNotFound(b)));
        assert_eq!(plan.verdicts[1], Err(LedgerError::WalletNotFound(b)));
        assert!(inserts(&plan).is_empty());
        assert!(plan.funds.is_empty());
    }

    #[test]
    fn a_transfer_never_creates_its_destination() {
        let (a, b) = (WalletId::generate(), WalletId::generate());
        let requests = [
            transfer(a, b, 1),
            request(b, OperationKind::Deposit, 1),
            transfer(a, b, 1),
        ];
        let plan = plan(
            &requests,
            &[],
            &funded(&[(a, 10)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert_eq!(plan.verdicts[0], Err(LedgerError::WalletNotFound(b)));
        assert!(plan.verdicts[1].is_ok() && plan.verdicts[2].is_ok());
    }

    #[test]
    fn ids_are_one_namespace_for_operations_and_transfers() {
        let (a, b) = (WalletId::generate(), WalletId::generate());
        let deposit = operation(a, OperationKind::Deposit, 5);
        let amount = Amount::new(5).unwrap();
        let same_id = TransferRequest::new(deposit.id, a, b, amount, None).unwrap();
        let requests = [
            Request::Operation(deposit.clone()),
            Request::Transfer(same_id.clone()),
        ];
        let balances = funded(&[(a, 0), (b, 0)]);
        let in_batch = plan(
            &requests,
            &[],
            &balances,
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert_eq!(in_batch.verdicts[1], Err(LedgerError::IdempotencyKeyReused));

        let stored_record = Record::Operation(deposit.decide(Funds::default(), Utc::now()).0);
        let stored = HashMap::from([(deposit.id, stored_record)]);
        let later = plan(
            [&Request::Transfer(same_id)],
            &[],
            &balances,
            &stored,
            &HashMap::new(),
            Utc::now(),
        );
        assert_eq!(later.verdicts[0], Err(LedgerError::IdempotencyKeyReused));
    }

    #[test]
    fn the_id_of_a_transfers_incoming_side_cannot_name_anything_else() {
        let (a, b) = (WalletId::generate(), WalletId::generate());
        let first = transfer(a, b, 5);
        let incoming = first.incoming_side().unwrap();
        let mut squatter = operation(b, OperationKind::Deposit, 1);
        squatter.id = incoming;
        let requests = [first, Request::Operation(squatter.clone())];
        let balances = funded(&[(a, 10), (b, 0)]);
        let plan_a = plan(
            &requests,
            &[],
            &balances,
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert!(plan_a.verdicts[0].is_ok());
        assert_eq!(plan_a.verdicts[1], Err(LedgerError::IdempotencyKeyReused));

        // The other way round: the derived id is taken first, the transfer is refused.
        let later = transfer(a, b, 5);
        squatter.id = later.incoming_side().unwrap();
        let requests = [Request::Operation(squatter), later];
        let plan_b = plan(
            &requests,
            &[],
            &balances,
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        assert!(plan_b.verdicts[0].is_ok());
        assert_eq!(plan_b.verdicts[1], Err(LedgerError::IdempotencyKeyReused));
        assert_eq!(inserts(&plan_b), [0]);
    }

    #[test]
    fn a_stored_rejected_transfer_is_replayed_after_the_source_is_funded() {
        let (a, b) = (WalletId::generate(), WalletId::generate());
        let request = transfer(a, b, 50);
        let Request::Transfer(inner) = &request else {
            unreachable!()
        };
        let (rejected, ..) = inner.decide(Funds::default(), Funds::default(), Utc::now());
        let stored = HashMap::from([(inner.id(), Record::Transfer(rejected.clone()))]);
        let plan = plan(
            [&request],
            &[],
            &funded(&[(a, 100), (b, 0)]),
            &stored,
            &HashMap::new(),
            Utc::now(),
        );
        let outcome = plan.verdicts[0].as_ref().unwrap();
        assert!(outcome.replayed);
        assert_eq!(outcome.record, Record::Transfer(rejected));
        assert!(plan.funds.is_empty());
    }

    fn pending_withdrawal(wallet: WalletId, amount: u64, timeout: Option<u32>) -> Request {
        Request::Operation(OperationRequest {
            pending: Some(Pending {
                timeout: timeout.and_then(std::num::NonZeroU32::new),
            }),
            ..operation(wallet, OperationKind::Withdraw, amount)
        })
    }

    /// A batch that placed a hold of `amount` on a wallet of 100 at `at`: the hold as it
    /// stored it, the funds it left and the stored holds a later batch finds.
    struct Placed {
        hold: HoldRecord,
        funds: HashMap<WalletId, Funds>,
        stored: HashMap<OperationId, HoldRecord>,
    }

    fn placed(wallet: WalletId, amount: u64, timeout: Option<u32>, at: DateTime<Utc>) -> Placed {
        let placing = plan(
            [&pending_withdrawal(wallet, amount, timeout)],
            &[],
            &funded(&[(wallet, 100)]),
            &HashMap::new(),
            &HashMap::new(),
            at,
        );
        let hold = placing.holds[0].clone();
        Placed {
            funds: placing.funds.iter().copied().collect(),
            stored: HashMap::from([(hold.id, hold.clone())]),
            hold,
        }
    }

    #[test]
    fn a_hold_reserves_money_that_later_withdrawals_cannot_take() {
        let wallet = WalletId::generate();
        let requests = [
            pending_withdrawal(wallet, 70, None),
            request(wallet, OperationKind::Withdraw, 40),
            request(wallet, OperationKind::Withdraw, 30),
        ];
        let plan = plan(
            &requests,
            &[],
            &funded(&[(wallet, 100)]),
            &HashMap::new(),
            &HashMap::new(),
            Utc::now(),
        );
        let statuses: Vec<_> = (0..3).map(|i| status(decided(&plan, i))).collect();
        let refused = OperationStatus::Rejected(RejectReason::InsufficientFunds);
        assert_eq!(
            statuses,
            [OperationStatus::Pending, refused, OperationStatus::Applied]
        );
        let after = Funds::new(Balance::new(70).unwrap(), Balance::new(70).unwrap()).unwrap();
        assert_eq!(plan.funds, [(wallet, after)]);
        assert_eq!(plan.holds[0].status, HoldStatus::Pending);
    }

    #[test]
    fn a_confirmation_moves_the_held_money_once_and_a_void_after_it_is_refused() {
        let wallet = WalletId::generate();
        let Placed {
            hold,
            funds: funds_after,
            stored,
        } = placed(wallet, 70, None, Utc::now());
        let confirm = HoldDecision::confirm(hold.terms(), Some(Amount::new(50).unwrap())).unwrap();
        let requests = [
            Request::Hold(confirm.clone()),
            Request::Hold(confirm),
            Request::Hold(HoldDecision::void(hold.terms())),
        ];
        let plan = plan(
            &requests,
            &[],
            &funds_after,
            &HashMap::new(),
            &stored,
            Utc::now(),
        );
        let first = plan.verdicts[0].as_ref().unwrap();
        assert!(!first.replayed);
        assert!(plan.verdicts[1].as_ref().unwrap().replayed);
        assert_eq!(plan.verdicts[2], Err(LedgerError::HoldNotPending(hold.id)));
        assert_eq!(plan.funds, [(wallet, funds(50))]);
        assert_eq!(resolutions(&plan).len(), 1);
        let confirmed = Amount::new(50).unwrap();
        assert_eq!(plan.holds[0].status, HoldStatus::Confirmed(confirmed));
    }

    #[test]
    fn a_confirmation_after_the_expiry_expires_the_hold_and_is_refused() {
        let wallet = WalletId::generate();
        let placed_at = Utc::now();
        let Placed {
            hold,
            funds: funds_after,
            stored,
        } = placed(wallet, 70, Some(1), placed_at);
        let late = placed_at + chrono::TimeDelta::seconds(1);
        let confirm = Request::Hold(HoldDecision::confirm(hold.terms(), None).unwrap());
        let expire = Request::Hold(HoldDecision::expire(hold.id, wallet));
        let plan = plan(
            [&confirm, &expire],
            &[],
            &funds_after,
            &HashMap::new(),
            &stored,
            late,
        );
        assert_eq!(plan.verdicts[0], Err(LedgerError::HoldNotPending(hold.id)));
        // The sweep's own expiry comes after the fact: it replays.
        assert!(plan.verdicts[1].as_ref().unwrap().replayed);
        assert_eq!(plan.holds[0].status, HoldStatus::Expired);
        assert_eq!(plan.funds, [(wallet, funds(100))]);
        assert_eq!(resolutions(&plan)[0].status, OperationStatus::Expired);
    }

    #[test]
    fn a_hold_not_due_yet_is_not_expired() {
        let wallet = WalletId::generate();
        let Placed {
            hold,
            funds: funds_after,
            stored,
        } = placed(wallet, 10, Some(60), Utc::now());
        let expire = Request::Hold(HoldDecision::expire(hold.id, wallet));
        let plan = plan(
            [&expire],
            &[],
            &funds_after,
            &HashMap::new(),
            &stored,
            Utc::now(),
        );
        assert_eq!(plan.verdicts[0], Err(LedgerError::HoldNotPending(hold.id)));
        assert!(plan.holds.is_empty() && plan.funds.is_empty());
    }

    proptest! {
        /// One batch must decide exactly like a teller who sees the requests one by one.
        #[test]
        fn a_batch_decides_like_one_request_at_a_time(
            start in 0_u64..200,
            ops in prop::collection::vec((any::<bool>(), 1_u64..100), 1..60),
        ) {
            let wallet = WalletId::generate();
            let requests: Vec<_> = ops
                .iter()
                .map(|&(deposit, amount)| {
                    let kind = if deposit { OperationKind::Deposit } else { OperationKind::Withdraw };
                    request(wallet, kind, amount)
                })
                .collect();
            let plan = plan(&requests, &[], &funded(&[(wallet, start)]), &HashMap::new(), &HashMap::new(), Utc::now());

            let mut model = start;
            for (&(deposit, amount), verdict) in ops.iter().zip(&plan.verdicts) {
                let Record::Operation(record) = &verdict.as_ref().unwrap().record else {
                    panic!("an operation is decided into an operation record");
                };
                let accepted = deposit || amount <= model;
                if accepted {
                    model = if deposit { model + amount } else { model - amount };
                }
                prop_assert_eq!(record.status == OperationStatus::Applied, accepted);
                prop_assert_eq!(record.balance_after.get(), model);
            }
            let expected_changes = if model == start { 0 } else { 1 };
            prop_assert_eq!(plan.funds.len(), expected_changes);
        }

        /// Transfers among a few wallets, mixed with withdrawals, decide like the model and
        /// never create or destroy money.
        #[test]
        fn transfers_conserve_money_and_decide_like_the_model(
            starts in prop::collection::vec(0_u64..100, 3),
            ops in prop::collection::vec((0_usize..3, 0_usize..3, 1_u64..60), 1..60),
        ) {
            let wallets: Vec<_> = (0..3).map(|_| WalletId::generate()).collect();
            let balances = funded(&[
                (wallets[0], starts[0]),
                (wallets[1], starts[1]),
                (wallets[2], starts[2]),
            ]);
            let requests: Vec<_> = ops
                .iter()
                .map(|&(from, to, amount)| {
                    if from == to {
                        request(wallets[from], OperationKind::Withdraw, amount)
                    } else {
                        transfer(wallets[from], wallets[to], amount)
                    }
                })
                .collect();
            let plan = plan(&requests, &[], &balances, &HashMap::new(), &HashMap::new(), Utc::now());

            let mut model = starts.clone();
            for (&(from, to, amount), verdict) in ops.iter().zip(&plan.verdicts) {
                let record = &verdict.as_ref().unwrap().record;
                let accepted = amount <= model[from];
                if accepted {
                    model[from] -= amount;
                    if from != to {
                        model[to] += amount;
                    }
                }
                prop_assert_eq!(status(record) == OperationStatus::Applied, accepted);
                if let Record::Transfer(record) = record {
                    prop_assert_eq!(record.from_balance.get(), model[from]);
                    prop_assert_eq!(record.to_balance.get(), model[to]);
                }
            }
            let mut finals: HashMap<WalletId, u64> =
                balances.iter().map(|(&w, b)| (w, b.balance().get())).collect();
            for (wallet, balance) in &plan.funds {
                finals.insert(*wallet, balance.balance().get());
            }
            for (i, wallet) in wallets.iter().enumerate() {
                prop_assert_eq!(finals[wallet], model[i]);
            }
        }
    }
}
