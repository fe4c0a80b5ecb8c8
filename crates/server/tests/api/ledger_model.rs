//! Property: whatever sequence of deposits, withdrawals and retries arrives, the ledger on
//! real PostgreSQL decides it exactly like a simple in-memory model.

use crate::helpers::database::TestDatabase;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use sqlx::postgres::PgConnectOptions;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use wallet_server::domain::{
    Amount, OperationId, OperationKind, OperationRequest, OperationStatus, WalletId,
};
use wallet_server::ledger::{Ledger, LedgerConfig, LedgerError};
use wallet_server::store;

/// One step of a generated scenario.
#[derive(Debug, Clone)]
enum Step {
    /// A new operation on wallet number `wallet`.
    New {
        wallet: usize,
        deposit: bool,
        amount: u64,
    },
    /// The client retries the `n`-th earlier operation (modulo how many exist).
    Retry(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..3_usize, any::<bool>(), 1..60_u64)
            .prop_map(|(wallet, deposit, amount)| Step::New { wallet, deposit, amount }),
        1 => any::<usize>().prop_map(Step::Retry),
    ]
}

/// What a client sees: applied or rejected with the balance after, or not found.
type Answer = Result<(bool, u64), LedgerError>;

/// The model: a map of balances, one request at a time.
fn model(requests: &[OperationRequest]) -> Vec<Answer> {
    let mut balances: HashMap<WalletId, u64> = HashMap::new();
    let mut decided: HashMap<OperationId, Answer> = HashMap::new();
    requests
        .iter()
        .map(|request| {
            if let Some(answer) = decided.get(&request.id) {
                return *answer;
            }
            let (wallet, amount) = (request.wallet_id, request.amount.get());
            let answer = match (request.kind, balances.get(&wallet).copied()) {
                // Not recorded: a retry is decided afresh, as the ledger does.
                (OperationKind::Withdraw, None) => return Err(LedgerError::WalletNotFound(wallet)),
                (OperationKind::Withdraw, Some(balance)) if balance < amount => {
                    Ok((false, balance))
                }
                (OperationKind::Withdraw, Some(balance)) => Ok((true, balance - amount)),
                // Only deposits and withdrawals are generated.
                (_, balance) => Ok((true, balance.unwrap_or(0) + amount)),
            };
            if let Ok((true, after)) = answer {
                balances.insert(wallet, after);
            }
            decided.insert(request.id, answer);
            answer
        })
        .collect()
}

fn requests(steps: &[Step]) -> Vec<OperationRequest> {
    let wallets: Vec<WalletId> = (0..3).map(|_| WalletId::new_random()).collect();
    let mut requests: Vec<OperationRequest> = Vec::new();
    for step in steps {
        let request = match step {
            Step::Retry(n) if !requests.is_empty() => requests[n % requests.len()].clone(),
            Step::Retry(_) => continue,
            Step::New {
                wallet,
                deposit,
                amount,
            } => OperationRequest {
                id: OperationId::new_random(),
                wallet_id: wallets[*wallet],
                kind: if *deposit {
                    OperationKind::Deposit
                } else {
                    OperationKind::Withdraw
                },
                amount: Amount::new(*amount).unwrap(),
                idempotency_key: None,
            },
        };
        requests.push(request);
    }
    requests
}

/// Submits every request at once, in order: they queue in that order and are committed in
/// whatever batches form, which must not change any decision.
async fn ledger_answers(ledger: &Ledger, requests: &[OperationRequest]) -> Vec<Answer> {
    let submissions = requests.iter().map(|r| ledger.submit(r.clone()));
    let outcomes = futures_join_in_order(submissions).await;
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.map(|o| {
                (
                    o.record.status == OperationStatus::Applied,
                    o.record.balance_after.get(),
                )
            })
        })
        .collect()
}

/// Polls all futures concurrently but starts them in order, so that their queue order is
/// their order in the iterator.
async fn futures_join_in_order<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, result) in pinned.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => *result = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every future completed"))
        .collect()
}

#[test]
fn the_ledger_decides_like_the_in_memory_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = TestDatabase::fresh();
    let url = database.url();
    // The writer tasks live as long as `_writers`.
    let (ledger, _writers) = runtime.block_on(async {
        let options = PgConnectOptions::from_str(&url).unwrap();
        let pool = store::open(
            &url,
            options.clone(),
            2,
            Duration::from_secs(5),
            Duration::ZERO,
        )
        .await
        .unwrap();
        store::migrate(&pool).await.unwrap();
        let config = LedgerConfig {
            shards: 2,
            max_batch: 16,
            queue_capacity: 1000,
            request_timeout: Duration::from_secs(10),
        };
        Ledger::start(&config, options)
    });

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(step(), 1..80), |steps| {
            let requests = requests(&steps);
            let actual = runtime.block_on(ledger_answers(&ledger, &requests));
            prop_assert_eq!(actual, model(&requests));
            Ok(())
        })
        .unwrap();
}
