//! The consistency check after the run: every balance must equal what the server acknowledged,
//! and sampled histories must hold exactly the acknowledged operations. Writes whose answer was
//! lost are looked up first, so the check stays exact even when requests failed.

use std::collections::HashMap;
use std::fmt;

use futures_util::{StreamExt, stream};
use serde::Serialize;
use uuid::Uuid;

use crate::api::{Api, OperationRecord, OperationStatus, OperationType};
use crate::workload::Write;

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
    pub histories_checked: usize,
    pub history_operations: usize,
    pub discrepancies: Vec<String>,
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

    // 1. Settle the unknowns: the server's record is the truth about them.
    let lookups: Vec<_> = stream::iter(unsettled)
        .map(|write| async move { (write, api.operation(write).await) })
        .buffer_unordered(PARALLEL_CHECKS)
        .collect()
        .await;
    for (write, lookup) in lookups {
        match lookup {
            Ok(Some(record)) => {
                verdict.discrepancies.extend(record_mismatch(
                    api.wallets()[write.wallet as usize],
                    write,
                    &record,
                ));
                if record.status == OperationStatus::Applied {
                    verdict.unsettled_applied += 1;
                    acknowledged.push(*write);
                } else {
                    verdict.unsettled_not_applied += 1;
                }
            }
            Ok(None) => verdict.unsettled_not_applied += 1,
            Err(error) => verdict.discrepancies.push(format!(
                "operation {} could not be settled: {error:#}",
                write.id
            )),
        }
    }

    // 2. Every balance equals the sum of what was acknowledged.
    let expected = expected_balances(api.wallets().len(), &acknowledged);
    let balances: Vec<_> = stream::iter(0..api.wallets().len() as u32)
        .map(|wallet| async move { (wallet, api.balance(wallet).await) })
        .buffered(PARALLEL_CHECKS)
        .collect()
        .await;
    let mut actual = vec![None; api.wallets().len()];
    for (wallet, balance) in balances {
        let id = api.wallets()[wallet as usize];
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

    // 3. Sampled histories hold exactly the acknowledged operations and add up.
    let mut acknowledged_ids: HashMap<u32, Vec<Uuid>> = history_sample
        .iter()
        .map(|&wallet| (wallet, Vec::new()))
        .collect();
    for write in &acknowledged {
        if let Some(ids) = acknowledged_ids.get_mut(&write.wallet) {
            ids.push(write.id);
        }
    }
    let histories: Vec<_> = stream::iter(history_sample)
        .map(|&wallet| async move { (wallet, read_history(api, wallet).await) })
        .buffer_unordered(PARALLEL_HISTORIES)
        .collect()
        .await;
    for (wallet, history) in histories {
        let id = api.wallets()[wallet as usize];
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
                    &acknowledged_ids[&wallet],
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

/// The balance each wallet must have: the sum of its acknowledged deposits minus its
/// acknowledged withdrawals. Wide integers, so no sum of valid amounts can overflow.
pub fn expected_balances(wallets: usize, acknowledged: &[Write]) -> Vec<i128> {
    let mut balances = vec![0i128; wallets];
    for write in acknowledged {
        balances[write.wallet as usize] += write.delta();
    }
    balances
}

/// Differences between a write as sent and the record the server stored for its id.
fn record_mismatch(wallet_id: Uuid, write: &Write, record: &OperationRecord) -> Option<String> {
    let same = record.wallet_id == wallet_id
        && record.operation_type == OperationType::from(write.kind)
        && record.amount == write.amount;
    (!same).then(|| {
        format!(
            "operation {}: stored as {:?} of {} on wallet {}, sent as {:?} of {} on wallet {wallet_id}",
            write.id,
            record.operation_type,
            record.amount,
            record.wallet_id,
            write.kind,
            write.amount
        )
    })
}

/// Checks one wallet's full history (newest first) against its balance and the ids the server
/// acknowledged for it.
pub fn check_history(
    wallet_id: Uuid,
    balance: i64,
    items: &[OperationRecord],
    acknowledged: &[Uuid],
) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen: HashMap<Uuid, (usize, OperationStatus)> = HashMap::with_capacity(items.len());
    let mut sum = 0i128;
    for item in items {
        if item.wallet_id != wallet_id {
            found.push(format!(
                "wallet {wallet_id}: history lists operation {} of wallet {}",
                item.operation_id, item.wallet_id
            ));
        }
        seen.entry(item.operation_id).or_insert((0, item.status)).0 += 1;
        if item.status == OperationStatus::Applied {
            sum += match item.operation_type {
                OperationType::Deposit => i128::from(item.amount),
                OperationType::Withdraw => -i128::from(item.amount),
            };
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
    for id in acknowledged {
        match seen.remove(id) {
            None => found.push(format!(
                "wallet {wallet_id}: acknowledged operation {id} is missing from the history"
            )),
            Some((_, OperationStatus::Rejected)) => found.push(format!(
                "wallet {wallet_id}: acknowledged operation {id} is recorded as rejected"
            )),
            Some((_, OperationStatus::Applied)) => {}
        }
    }
    for (id, (_, status)) in seen {
        if status == OperationStatus::Applied {
            found.push(format!(
                "wallet {wallet_id}: operation {id} is applied but was never acknowledged"
            ));
        }
    }
    found
}

/// The wallets whose history is checked: all if there are at most `size`, otherwise wallet 0
/// (the hottest under zipf) and a random choice of the others.
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
    use crate::workload::WriteKind;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const WALLET: Uuid = Uuid::from_u128(0xAA);

    fn write(wallet: u32, kind: WriteKind, amount: u64, id: u128) -> Write {
        Write {
            wallet,
            kind,
            amount,
            id: Uuid::from_u128(id),
        }
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
        }
    }

    /// Newest first: +100, -30 applied, -500 rejected, +5 applied. Balance 75.
    fn history() -> Vec<OperationRecord> {
        use OperationStatus::*;
        use OperationType::*;
        vec![
            record(4, Deposit, 5, Applied, 75),
            record(3, Withdraw, 500, Rejected, 70),
            record(2, Withdraw, 30, Applied, 70),
            record(1, Deposit, 100, Applied, 100),
        ]
    }

    fn acknowledged() -> Vec<Uuid> {
        [1, 2, 4].map(Uuid::from_u128).to_vec()
    }

    #[test]
    fn expected_balance_is_deposits_minus_withdrawals_per_wallet() {
        let writes = [
            write(0, WriteKind::Deposit, 1_000, 1),
            write(0, WriteKind::Withdraw, 300, 2),
            write(1, WriteKind::Deposit, 7, 3),
            write(0, WriteKind::Deposit, 5, 4),
        ];
        assert_eq!(expected_balances(3, &writes), [705, 7, 0]);
    }

    #[test]
    fn expected_balance_cannot_overflow_on_many_large_amounts() {
        let big = crate::workload::MAX_AMOUNT;
        let writes: Vec<Write> = (0..4096)
            .map(|i| write(0, WriteKind::Deposit, big, i))
            .collect();
        assert_eq!(expected_balances(1, &writes)[0], 4096 * i128::from(big));
    }

    #[test]
    fn consistent_history_has_no_discrepancies() {
        assert!(check_history(WALLET, 75, &history(), &acknowledged()).is_empty());
    }

    #[test]
    fn history_that_does_not_sum_to_the_balance_is_reported() {
        let found = check_history(WALLET, 80, &history(), &acknowledged());
        assert!(found.iter().any(|d| d.contains("sum to 75")), "{found:?}");
        assert!(
            found.iter().any(|d| d.contains("leaves balance 75")),
            "{found:?}"
        );
    }

    #[test]
    fn missing_acknowledged_operation_is_reported() {
        let mut ids = acknowledged();
        ids.push(Uuid::from_u128(9));
        let found = check_history(WALLET, 75, &history(), &ids);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("missing"));
    }

    #[test]
    fn duplicated_operation_is_reported() {
        let mut items = history();
        items.push(items[3].clone());
        let found = check_history(WALLET, 175, &items, &acknowledged());
        assert!(
            found.iter().any(|d| d.contains("appears 2 times")),
            "{found:?}"
        );
    }

    #[test]
    fn applied_operation_never_acknowledged_is_reported() {
        let found = check_history(WALLET, 75, &history(), &[1, 2].map(Uuid::from_u128));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("never acknowledged"));
    }

    #[test]
    fn acknowledged_operation_recorded_as_rejected_is_reported() {
        let mut ids = acknowledged();
        ids.push(Uuid::from_u128(3));
        let found = check_history(WALLET, 75, &history(), &ids);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("recorded as rejected"));
    }

    #[test]
    fn operation_of_another_wallet_is_reported() {
        let mut items = history();
        items[1].wallet_id = Uuid::from_u128(0xBB);
        let found = check_history(WALLET, 75, &items, &acknowledged());
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn record_that_differs_from_the_sent_write_is_reported() {
        let sent = write(0, WriteKind::Withdraw, 30, 2);
        let stored = &history()[2];
        assert!(record_mismatch(WALLET, &sent, stored).is_none());
        let other_amount = Write { amount: 31, ..sent };
        assert!(record_mismatch(WALLET, &other_amount, stored).is_some());
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
