//! The consistency check after the run: every balance must equal what the server acknowledged,
//! the balances together must hold the money deposited minus the money withdrawn (transfers only
//! move it), and sampled histories must hold exactly the acknowledged operations, both sides of
//! every transfer included. Writes whose answer was lost are looked up first, so the check stays
//! exact even when requests failed.

use std::collections::HashMap;
use std::fmt;

use futures_util::{StreamExt, stream};
use serde::Serialize;
use uuid::Uuid;

use crate::api::{Api, OperationRecord, OperationStatus, OperationType, TransferRecord};
use crate::workload::{Write, WriteKind};

/// Verification requests in flight at once: enough to finish quickly, few enough not to
/// matter to a server that has just been loaded.
const PARALLEL_CHECKS: usize = 16;
/// Histories read at once; each may be thousands of pages, so fewer.
const PARALLEL_HISTORIES: usize = 4;

/// What verification found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub consistent: bool,
    pub wallets_checked: usize,
    /// Unsettled writes the server reported as applied.
    pub unsettled_applied: usize,
    /// Unsettled writes the server reported as rejected or never saw.
    pub unsettled_not_applied: usize,
    /// The money in the run's wallets against the money put in and taken out; `None` when a
    /// balance could not be read (that is a discrepancy of its own).
    pub conservation: Option<Conservation>,
    pub histories_checked: usize,
    pub history_operations: usize,
    pub discrepancies: Vec<String>,
}

/// Conservation of money. Each balance is checked against its own acknowledged writes too, but
/// this check needs no attribution of transfers to wallets: whatever transfers did, the run's
/// wallets together hold exactly what deposits put in minus what withdrawals took out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conservation {
    /// Applied deposits, the setup's funding included.
    pub deposited: i128,
    /// Applied withdrawals.
    pub withdrawn: i128,
    /// The sum of the balances read from the server after the run.
    pub balances: i128,
    /// `balances == deposited - withdrawn`.
    pub conserved: bool,
}

impl Conservation {
    /// Compares the sum of the balances read with the deposits and withdrawals among
    /// `acknowledged` (every applied write of the run, setup deposits included).
    pub fn new(acknowledged: &[Write], balances: i128) -> Self {
        let (mut deposited, mut withdrawn) = (0, 0);
        for write in acknowledged {
            match write.kind {
                WriteKind::Deposit { .. } => deposited += i128::from(write.amount),
                WriteKind::Withdraw { .. } => withdrawn += i128::from(write.amount),
                WriteKind::Transfer { .. } => {}
            }
        }
        Conservation {
            deposited,
            withdrawn,
            balances,
            conserved: balances == deposited - withdrawn,
        }
    }
}

/// One wallet's side of a write: a deposit or withdrawal has one, a transfer one on each
/// wallet. Each side is an item of its wallet's history and moves its balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    pub wallet: u32,
    pub operation_type: OperationType,
    /// The other wallet of a transfer.
    pub counterparty: Option<u32>,
}

/// The sides of a write, in the order source, destination.
pub fn legs(kind: WriteKind) -> impl Iterator<Item = Leg> {
    let single = |wallet, operation_type| Leg {
        wallet,
        operation_type,
        counterparty: None,
    };
    let (first, second) = match kind {
        WriteKind::Deposit { wallet } => (single(wallet, OperationType::Deposit), None),
        WriteKind::Withdraw { wallet } => (single(wallet, OperationType::Withdraw), None),
        WriteKind::Transfer { from, to } => (
            Leg {
                wallet: from,
                operation_type: OperationType::TransferOut,
                counterparty: Some(to),
            },
            Some(Leg {
                wallet: to,
                operation_type: OperationType::TransferIn,
                counterparty: Some(from),
            }),
        ),
    };
    std::iter::once(first).chain(second)
}

/// A history item that an acknowledged write must have left, named as the server names things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The client's id: the `operationId` of a deposit or withdrawal, the `transferId` of
    /// either side of a transfer (see [`OperationRecord::client_id`]).
    pub id: Uuid,
    pub wallet_id: Uuid,
    pub operation_type: OperationType,
    pub amount: u64,
    pub counterparty: Option<Uuid>,
}

impl Expected {
    /// The item `leg` of `write` leaves in its wallet's history; `wallets` are the run's ids.
    pub fn new(write: &Write, leg: Leg, wallets: &[Uuid]) -> Self {
        Expected {
            id: write.id,
            wallet_id: wallets[leg.wallet as usize],
            operation_type: leg.operation_type,
            amount: write.amount,
            counterparty: leg.counterparty.map(|wallet| wallets[wallet as usize]),
        }
    }

    /// How the record the server stored under this id differs from what was sent, if it does.
    fn mismatch(&self, record: &OperationRecord) -> Option<String> {
        let stored = (
            record.wallet_id,
            record.operation_type,
            record.amount,
            record.counterparty_wallet_id,
        );
        let sent = (
            self.wallet_id,
            self.operation_type,
            self.amount,
            self.counterparty,
        );
        (stored != sent).then(|| {
            format!(
                "operation {}: stored as {:?} of {} on wallet {} (counterparty {:?}), sent as \
                 {:?} of {} on wallet {} (counterparty {:?})",
                self.id,
                record.operation_type,
                record.amount,
                record.wallet_id,
                record.counterparty_wallet_id,
                self.operation_type,
                self.amount,
                self.wallet_id,
                self.counterparty
            )
        })
    }
}

/// Checks the ledger after the run. `acknowledged` holds every write answered `200 APPLIED`
/// (setup deposits included), `unsettled` every write whose answer was lost or unexpected.
pub async fn verify(
    api: &Api,
    mut acknowledged: Vec<Write>,
    unsettled: &[Write],
    history_sample: &[u32],
) -> Verdict {
    let mut verdict = Verdict::default();
    let wallets = api.wallets();

    // 1. Settle the unknowns: the server's record is the truth about them.
    let lookups: Vec<_> = stream::iter(unsettled)
        .map(|write| async move { (write, look_up(api, write).await) })
        .buffer_unordered(PARALLEL_CHECKS)
        .collect()
        .await;
    for (write, lookup) in lookups {
        match lookup {
            Ok(Some((status, mismatch))) => {
                verdict.discrepancies.extend(mismatch);
                if status == OperationStatus::Applied {
                    verdict.unsettled_applied += 1;
                    acknowledged.push(*write);
                } else {
                    verdict.unsettled_not_applied += 1;
                }
            }
            Ok(None) => verdict.unsettled_not_applied += 1,
            Err(error) => verdict.discrepancies.push(format!(
                "write {} could not be settled: {error:#}",
                write.id
            )),
        }
    }

    // 2. Every balance equals the sum of what was acknowledged, and together they hold the
    // money that came in minus the money that went out.
    let expected = expected_balances(wallets.len(), &acknowledged);
    let balances: Vec<_> = stream::iter(0..wallets.len() as u32)
        .map(|wallet| async move { (wallet, api.balance(wallet).await) })
        .buffered(PARALLEL_CHECKS)
        .collect()
        .await;
    let mut actual = vec![None; wallets.len()];
    for (wallet, balance) in balances {
        let id = wallets[wallet as usize];
        match balance {
            Ok(balance) => {
                verdict.wallets_checked += 1;
                actual[wallet as usize] = Some(balance);
                if i128::from(balance) != expected[wallet as usize] {
                    verdict.discrepancies.push(format!(
                        "wallet {id}: balance {balance}, expected {} from acknowledged operations",
                        expected[wallet as usize]
                    ));
                }
            }
            Err(error) => verdict
                .discrepancies
                .push(format!("wallet {id}: balance unreadable: {error:#}")),
        }
    }
    let total: Option<i128> = actual.iter().map(|b| b.map(i128::from)).sum();
    verdict.conservation = total.map(|total| Conservation::new(&acknowledged, total));
    if let Some(money) = verdict.conservation.filter(|money| !money.conserved) {
        verdict.discrepancies.push(format!(
            "money not conserved: the balances sum to {}, deposits minus withdrawals come to {}",
            money.balances,
            money.deposited - money.withdrawn
        ));
    }

    // 3. Sampled histories hold exactly the acknowledged operations and add up.
    let mut expected_items: HashMap<u32, Vec<Expected>> = history_sample
        .iter()
        .map(|&wallet| (wallet, Vec::new()))
        .collect();
    for write in &acknowledged {
        for leg in legs(write.kind) {
            if let Some(items) = expected_items.get_mut(&leg.wallet) {
                items.push(Expected::new(write, leg, wallets));
            }
        }
    }
    let histories: Vec<_> = stream::iter(history_sample)
        .map(|&wallet| async move { (wallet, read_history(api, wallet).await) })
        .buffer_unordered(PARALLEL_HISTORIES)
        .collect()
        .await;
    for (wallet, history) in histories {
        let id = wallets[wallet as usize];
        let Some(balance) = actual[wallet as usize] else {
            continue;
        };
        match history {
            Ok(items) => {
                verdict.histories_checked += 1;
                verdict.history_operations += items.len();
                verdict.discrepancies.extend(check_history(
                    id,
                    balance,
                    &items,
                    &expected_items[&wallet],
                ));
            }
            Err(error) => verdict
                .discrepancies
                .push(format!("wallet {id}: history unreadable: {error:#}")),
        }
    }

    verdict.consistent = verdict.discrepancies.is_empty();
    verdict
}

/// Asks the server what became of a write whose answer was lost: its stored status and how the
/// stored record differs from what was sent, if it does; `None` if it never stored the id.
async fn look_up(
    api: &Api,
    write: &Write,
) -> anyhow::Result<Option<(OperationStatus, Option<String>)>> {
    let wallets = api.wallets();
    if let WriteKind::Transfer { from, to } = write.kind {
        let record = api.transfer(write.id).await?;
        return Ok(record.map(|record| {
            let sent = (wallets[from as usize], wallets[to as usize]);
            (record.status, transfer_mismatch(sent, write, &record))
        }));
    }
    let leg = legs(write.kind)
        .next()
        .expect("every write has a side on its first wallet");
    let expected = Expected::new(write, leg, wallets);
    let record = api.operation(leg.wallet, write.id).await?;
    Ok(record.map(|record| (record.status, expected.mismatch(&record))))
}

/// How a stored transfer differs from the one sent between the wallets `(from, to)`, if it does.
fn transfer_mismatch(
    (from, to): (Uuid, Uuid),
    write: &Write,
    record: &TransferRecord,
) -> Option<String> {
    let stored = (record.from_wallet_id, record.to_wallet_id, record.amount);
    (stored != (from, to, write.amount)).then(|| {
        format!(
            "transfer {}: stored as {} from {} to {}, sent as {} from {from} to {to}",
            write.id, record.amount, record.from_wallet_id, record.to_wallet_id, write.amount
        )
    })
}

/// Pages through a wallet's whole history, newest first.
async fn read_history(api: &Api, wallet: u32) -> anyhow::Result<Vec<OperationRecord>> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = api.history_page(wallet, cursor.as_deref()).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
}

/// The balance each wallet must have: the sum of its acknowledged deposits and incoming
/// transfers minus its acknowledged withdrawals and outgoing transfers.
pub fn expected_balances(wallets: usize, acknowledged: &[Write]) -> Vec<i128> {
    let mut balances = vec![0i128; wallets];
    for write in acknowledged {
        for leg in legs(write.kind) {
            balances[leg.wallet as usize] += leg.operation_type.delta(write.amount);
        }
    }
    balances
}

/// Checks one wallet's full history (newest first) against its balance and the items its
/// acknowledged writes must have left there.
pub fn check_history(
    wallet_id: Uuid,
    balance: i64,
    items: &[OperationRecord],
    acknowledged: &[Expected],
) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen: HashMap<Uuid, (usize, &OperationRecord)> = HashMap::with_capacity(items.len());
    let mut sum = 0i128;
    for item in items {
        if item.wallet_id != wallet_id {
            found.push(format!(
                "wallet {wallet_id}: history lists operation {} of wallet {}",
                item.operation_id, item.wallet_id
            ));
        }
        seen.entry(item.client_id()).or_insert((0, item)).0 += 1;
        if item.status == OperationStatus::Applied {
            sum += item.operation_type.delta(item.amount);
        }
    }
    if sum != i128::from(balance) {
        found.push(format!(
            "wallet {wallet_id}: applied operations in the history sum to {sum}, balance is {balance}"
        ));
    }
    if let Some(newest) = items
        .iter()
        .find(|item| item.status == OperationStatus::Applied)
        && newest.balance != balance
    {
        found.push(format!(
            "wallet {wallet_id}: newest applied operation {} leaves balance {}, balance is {balance}",
            newest.operation_id, newest.balance
        ));
    }
    for (id, (count, _)) in &seen {
        if *count > 1 {
            found.push(format!(
                "wallet {wallet_id}: operation {id} appears {count} times in the history"
            ));
        }
    }
    for expected in acknowledged {
        match seen.remove(&expected.id) {
            None => found.push(format!(
                "wallet {wallet_id}: acknowledged operation {} is missing from the history",
                expected.id
            )),
            Some((_, record)) if record.status == OperationStatus::Rejected => {
                found.push(format!(
                    "wallet {wallet_id}: acknowledged operation {} is recorded as rejected",
                    expected.id
                ));
            }
            Some((_, record)) => found.extend(expected.mismatch(record)),
        }
    }
    for (id, (_, record)) in seen {
        if record.status == OperationStatus::Applied {
            found.push(format!(
                "wallet {wallet_id}: operation {id} is applied but was never acknowledged"
            ));
        }
    }
    found
}

/// The wallets whose history is checked: all if there are at most `size`, otherwise wallet 0
/// (the hottest under zipf, and [`crate::workload::HOT_WALLET`] of the hot transfer patterns)
/// and a random choice of the others.
pub fn history_sample(wallets: u32, size: usize, rng: &mut impl rand::Rng) -> Vec<u32> {
    let wallets = wallets as usize;
    if size >= wallets {
        return (0..wallets as u32).collect();
    }
    if size == 0 {
        return Vec::new();
    }
    let mut sample: Vec<u32> = std::iter::once(0)
        .chain(
            rand::seq::index::sample(rng, wallets - 1, size - 1)
                .into_iter()
                .map(|i| i as u32 + 1),
        )
        .collect();
    sample.sort_unstable();
    sample
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verified   {} balances; {} unsettled writes looked up ({} applied, {} not applied); \
             {} histories with {} operations",
            self.wallets_checked,
            self.unsettled_applied + self.unsettled_not_applied,
            self.unsettled_applied,
            self.unsettled_not_applied,
            self.histories_checked,
            self.history_operations
        )?;
        match self.conservation {
            Some(money) => writeln!(
                f,
                "money      the balances sum to {}; deposited {} - withdrawn {} = {}: {}",
                money.balances,
                money.deposited,
                money.withdrawn,
                money.deposited - money.withdrawn,
                if money.conserved {
                    "conserved"
                } else {
                    "NOT CONSERVED"
                }
            )?,
            None => writeln!(f, "money      not summed: some balances could not be read")?,
        }
        if self.consistent {
            return writeln!(f, "CONSISTENT");
        }
        for discrepancy in &self.discrepancies {
            writeln!(f, "DISCREPANCY {discrepancy}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    /// The run's wallets; the histories below are wallet 0's.
    const IDS: [Uuid; 3] = [
        Uuid::from_u128(0xAA),
        Uuid::from_u128(0xBB),
        Uuid::from_u128(0xCC),
    ];
    const WALLET: Uuid = IDS[0];

    fn write(kind: WriteKind, amount: u64, id: u128) -> Write {
        Write {
            kind,
            amount,
            id: Uuid::from_u128(id),
        }
    }

    fn deposit(wallet: u32, amount: u64, id: u128) -> Write {
        write(WriteKind::Deposit { wallet }, amount, id)
    }

    fn withdraw(wallet: u32, amount: u64, id: u128) -> Write {
        write(WriteKind::Withdraw { wallet }, amount, id)
    }

    fn transfer(from: u32, to: u32, amount: u64, id: u128) -> Write {
        write(WriteKind::Transfer { from, to }, amount, id)
    }

    fn record(
        id: u128,
        kind: OperationType,
        amount: u64,
        status: OperationStatus,
        balance: i64,
    ) -> OperationRecord {
        OperationRecord {
            operation_id: Uuid::from_u128(id),
            wallet_id: WALLET,
            operation_type: kind,
            amount,
            status,
            balance,
            transfer_id: None,
            counterparty_wallet_id: None,
        }
    }

    /// A side of transfer `transfer` on wallet 0; the outgoing side carries the transfer's id as
    /// its operation id, the incoming side one of the server's making.
    fn side(
        transfer: u128,
        kind: OperationType,
        counterparty: usize,
        amount: u64,
        status: OperationStatus,
        balance: i64,
    ) -> OperationRecord {
        let operation_id = match kind {
            OperationType::TransferIn => transfer << 8,
            _ => transfer,
        };
        OperationRecord {
            transfer_id: Some(Uuid::from_u128(transfer)),
            counterparty_wallet_id: Some(IDS[counterparty]),
            ..record(operation_id, kind, amount, status, balance)
        }
    }

    /// Newest first: +100, -30 applied, -500 rejected, 10 out to wallet 1, 25 in from wallet 2,
    /// 1000 out to wallet 1 rejected, +5. Balance 90.
    fn history() -> Vec<OperationRecord> {
        use OperationStatus::*;
        use OperationType::*;
        vec![
            record(4, Deposit, 5, Applied, 90),
            side(7, TransferOut, 1, 1000, Rejected, 85),
            side(6, TransferIn, 2, 25, Applied, 85),
            side(5, TransferOut, 1, 10, Applied, 60),
            record(3, Withdraw, 500, Rejected, 70),
            record(2, Withdraw, 30, Applied, 70),
            record(1, Deposit, 100, Applied, 100),
        ]
    }

    /// The writes acknowledged during the run, on every wallet.
    fn writes() -> Vec<Write> {
        vec![
            deposit(0, 100, 1),
            withdraw(0, 30, 2),
            transfer(0, 1, 10, 5),
            deposit(2, 40, 8),
            transfer(2, 0, 25, 6),
            deposit(0, 5, 4),
        ]
    }

    /// What `writes` must have left in `wallet`'s history, as `verify` gathers it.
    fn expected_on(wallet: u32, writes: &[Write]) -> Vec<Expected> {
        writes
            .iter()
            .flat_map(|write| legs(write.kind).map(move |leg| (write, leg)))
            .filter(|(_, leg)| leg.wallet == wallet)
            .map(|(write, leg)| Expected::new(write, leg, &IDS))
            .collect()
    }

    fn acknowledged() -> Vec<Expected> {
        expected_on(0, &writes())
    }

    #[test]
    fn expected_balance_is_deposits_minus_withdrawals_per_wallet() {
        let writes = [
            deposit(0, 1_000, 1),
            withdraw(0, 300, 2),
            deposit(1, 7, 3),
            deposit(0, 5, 4),
        ];
        assert_eq!(expected_balances(3, &writes), [705, 7, 0]);
    }

    #[test]
    fn transfer_moves_expected_balance_from_source_to_destination() {
        let writes = [
            deposit(0, 100, 1),
            transfer(0, 1, 30, 2),
            transfer(1, 2, 5, 3),
        ];
        assert_eq!(expected_balances(3, &writes), [70, 25, 5]);
    }

    #[test]
    fn expected_balance_cannot_overflow_on_many_large_amounts() {
        let big = crate::workload::MAX_AMOUNT;
        let writes: Vec<Write> = (0..4096).map(|i| deposit(0, big, i)).collect();
        assert_eq!(expected_balances(1, &writes)[0], 4096 * i128::from(big));
    }

    #[test]
    fn a_transfer_has_an_outgoing_and_an_incoming_side() {
        let sides: Vec<Leg> = legs(WriteKind::Transfer { from: 2, to: 0 }).collect();
        assert_eq!(
            sides,
            [
                Leg {
                    wallet: 2,
                    operation_type: OperationType::TransferOut,
                    counterparty: Some(0)
                },
                Leg {
                    wallet: 0,
                    operation_type: OperationType::TransferIn,
                    counterparty: Some(2)
                }
            ]
        );
        assert_eq!(legs(WriteKind::Withdraw { wallet: 1 }).count(), 1);
    }

    #[test]
    fn money_is_conserved_when_balances_sum_to_deposits_minus_withdrawals() {
        // 145 deposited, 30 withdrawn; the transfers move 35 without changing the total.
        let money = Conservation::new(&writes(), 115);
        assert_eq!(
            money,
            Conservation {
                deposited: 145,
                withdrawn: 30,
                balances: 115,
                conserved: true
            }
        );
        let total: i128 = expected_balances(3, &writes()).iter().sum();
        assert_eq!(total, 115);
    }

    #[test]
    fn money_created_or_lost_is_not_conserved() {
        assert!(!Conservation::new(&writes(), 116).conserved);
        assert!(!Conservation::new(&writes(), 114).conserved);
    }

    #[test]
    fn consistent_history_has_no_discrepancies() {
        assert!(check_history(WALLET, 90, &history(), &acknowledged()).is_empty());
    }

    #[test]
    fn history_that_does_not_sum_to_the_balance_is_reported() {
        let found = check_history(WALLET, 80, &history(), &acknowledged());
        assert!(found.iter().any(|d| d.contains("sum to 90")), "{found:?}");
        assert!(
            found.iter().any(|d| d.contains("leaves balance 90")),
            "{found:?}"
        );
    }

    #[test]
    fn missing_acknowledged_operation_is_reported() {
        let mut expected = acknowledged();
        expected.extend(expected_on(0, &[deposit(0, 1, 9)]));
        let found = check_history(WALLET, 90, &history(), &expected);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("missing"));
    }

    #[test]
    fn missing_side_of_an_acknowledged_transfer_is_reported() {
        let mut expected = acknowledged();
        expected.extend(expected_on(0, &[transfer(1, 0, 3, 9)]));
        let found = check_history(WALLET, 90, &history(), &expected);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("missing"));
    }

    #[test]
    fn incoming_side_is_matched_by_its_transfer_id() {
        let mut items = history();
        items[2].transfer_id = None;
        let found = check_history(WALLET, 90, &items, &acknowledged());
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|d| d.contains("missing")), "{found:?}");
        assert!(
            found.iter().any(|d| d.contains("never acknowledged")),
            "{found:?}"
        );
    }

    #[test]
    fn transfer_side_with_another_counterparty_is_reported() {
        let mut items = history();
        items[3].counterparty_wallet_id = Some(IDS[2]);
        let found = check_history(WALLET, 90, &items, &acknowledged());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("counterparty"), "{found:?}");
    }

    #[test]
    fn transfer_side_in_the_wrong_direction_is_reported() {
        let mut items = history();
        // Recorded as incoming, it adds 10 where 10 left: the sum is off by 20 as well.
        items[3].operation_type = OperationType::TransferIn;
        let found = check_history(WALLET, 90, &items, &acknowledged());
        assert!(found.iter().any(|d| d.contains("TransferIn")), "{found:?}");
        assert!(found.iter().any(|d| d.contains("sum to 110")), "{found:?}");
    }

    #[test]
    fn duplicated_operation_is_reported() {
        let mut items = history();
        items.push(items[6].clone());
        let found = check_history(WALLET, 190, &items, &acknowledged());
        assert!(
            found.iter().any(|d| d.contains("appears 2 times")),
            "{found:?}"
        );
    }

    #[test]
    fn applied_operation_never_acknowledged_is_reported() {
        let writes: Vec<Write> = writes()
            .into_iter()
            .filter(|w| w.id.as_u128() != 6)
            .collect();
        let found = check_history(WALLET, 90, &history(), &expected_on(0, &writes));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("never acknowledged"));
    }

    #[test]
    fn acknowledged_operation_recorded_as_rejected_is_reported() {
        let mut expected = acknowledged();
        expected.extend(expected_on(0, &[transfer(0, 1, 1000, 7)]));
        let found = check_history(WALLET, 90, &history(), &expected);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("recorded as rejected"));
    }

    #[test]
    fn operation_of_another_wallet_is_reported() {
        let mut items = history();
        items[4].wallet_id = IDS[1];
        let found = check_history(WALLET, 90, &items, &acknowledged());
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn record_that_differs_from_the_sent_write_is_reported() {
        let stored = &history()[5];
        let sent = withdraw(0, 30, 2);
        let leg = legs(sent.kind).next().unwrap();
        assert!(Expected::new(&sent, leg, &IDS).mismatch(stored).is_none());
        let other_amount = Write { amount: 31, ..sent };
        assert!(
            Expected::new(&other_amount, leg, &IDS)
                .mismatch(stored)
                .is_some()
        );
    }

    #[test]
    fn stored_transfer_that_differs_from_the_sent_one_is_reported() {
        let sent = transfer(0, 1, 10, 5);
        let stored = TransferRecord {
            transfer_id: sent.id,
            from_wallet_id: IDS[0],
            to_wallet_id: IDS[1],
            amount: 10,
            status: OperationStatus::Applied,
        };
        assert!(transfer_mismatch((IDS[0], IDS[1]), &sent, &stored).is_none());
        assert!(transfer_mismatch((IDS[0], IDS[2]), &sent, &stored).is_some());
        let other_amount = Write { amount: 11, ..sent };
        assert!(transfer_mismatch((IDS[0], IDS[1]), &other_amount, &stored).is_some());
    }

    #[test]
    fn verdict_text_shows_the_money_and_keeps_the_consistent_line() {
        let verdict = Verdict {
            consistent: true,
            conservation: Some(Conservation::new(&writes(), 115)),
            ..Verdict::default()
        };
        let text = verdict.to_string();
        assert!(
            text.contains("the balances sum to 115; deposited 145 - withdrawn 30 = 115: conserved"),
            "{text}"
        );
        assert!(text.lines().any(|line| line == "CONSISTENT"), "{text}");
    }

    #[test]
    fn history_sample_takes_all_wallets_when_few() {
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(history_sample(3, 20, &mut rng), [0, 1, 2]);
        assert!(history_sample(3, 0, &mut rng).is_empty());
    }

    #[test]
    fn history_sample_includes_the_hottest_wallet_and_no_duplicates() {
        let mut rng = SmallRng::seed_from_u64(1);
        let sample = history_sample(1000, 20, &mut rng);
        assert_eq!(sample.len(), 20);
        assert_eq!(sample[0], 0);
        assert!(sample.windows(2).all(|w| w[0] < w[1]));
        assert!(sample.iter().all(|&w| w < 1000));
    }
}
