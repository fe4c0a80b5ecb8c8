//! Property: whatever sequence of deposits, withdrawals, transfers and retries arrives, the
//! ledger on real PostgreSQL decides it exactly like a simple in-memory model: first the
//! ledger itself with deposits and withdrawals, then the whole service over HTTP with
//! transfers and holds too (pending withdrawals and transfers, confirmed in full or in part,
//! or voided), comparing balance, held and available.

use crate::helpers::database::TestDatabase;
use crate::helpers::{
    MAX_MONEY, Reply, TestApp, kind, operation_body, pending, spawn_app, status_and_body,
    transfer_body,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;
use wallet_server::domain::{
    Amount, OperationId, OperationKind, OperationRequest, OperationStatus, WalletId,
};
use wallet_server::ledger::{Ledger, LedgerConfig, LedgerError, TransferRouting};
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
    let wallets: Vec<WalletId> = (0..3).map(|_| WalletId::generate()).collect();
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
                id: OperationId::generate(),
                wallet_id: wallets[*wallet],
                kind: if *deposit {
                    OperationKind::Deposit
                } else {
                    OperationKind::Withdraw
                },
                amount: Amount::new(*amount).unwrap(),
                idempotency_key: None,
                pending: None,
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
        let (options, citus) = store::citus::distribute(options).await.unwrap();
        let config = LedgerConfig {
            shards: Some(2),
            max_batch: 16,
            queue_capacity: 1000,
            transfer_routing: TransferRouting::default(),
            request_timeout: Duration::from_secs(10),
        };
        let pipeline = store::pipeline_config(&url, Duration::from_secs(5)).unwrap();
        Ledger::start(&config, options, Some(pipeline), None, citus)
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

// ------------------------------------ the service over HTTP, with transfers and holds

/// Wallets of one scenario; none exists before a deposit creates it.
const WALLETS: usize = 3;

/// What a request does, on wallets numbered `0..WALLETS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Movement {
    Deposit(usize),
    Withdraw(usize),
    /// From and to; the same wallet twice now and then, which is refused.
    Transfer(usize, usize),
}

/// One step of a scenario sent to the service.
#[derive(Debug, Clone)]
enum ApiStep {
    New(Movement, u64),
    /// A withdrawal or a transfer sent with `"pending": true`.
    Hold(Movement, u64),
    /// Confirms the hold that the `n`-th earlier pending request asked for (modulo how many
    /// exist): all of it, or `share` modulo its amount, plus one.
    Confirm(usize, Option<u64>),
    /// Voids the hold that the `n`-th earlier pending request asked for.
    Void(usize),
    /// The client retries the `n`-th earlier request (modulo how many exist).
    Retry(usize),
    /// A different request, never pending, under the id of the `n`-th earlier one.
    Reuse(usize, Movement, u64),
}

fn movement() -> impl Strategy<Value = Movement> {
    prop_oneof![
        2 => (0..WALLETS).prop_map(Movement::Deposit),
        2 => (0..WALLETS).prop_map(Movement::Withdraw),
        6 => (0..WALLETS, 1..WALLETS)
            .prop_map(|(from, step)| Movement::Transfer(from, (from + step) % WALLETS)),
        1 => (0..WALLETS).prop_map(|wallet| Movement::Transfer(wallet, wallet)),
    ]
}

/// What a hold is asked for: a withdrawal or a transfer.
fn held_movement() -> impl Strategy<Value = Movement> {
    prop_oneof![
        1 => (0..WALLETS).prop_map(Movement::Withdraw),
        2 => (0..WALLETS, 1..WALLETS)
            .prop_map(|(from, step)| Movement::Transfer(from, (from + step) % WALLETS)),
    ]
}

/// Mostly small amounts, so that balances stay near zero and funds run short; now and then
/// 2^52, so that two of them pass the balance limit.
fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 1..60_u64, 1 => Just(1_u64 << 52)]
}

fn api_step() -> impl Strategy<Value = ApiStep> {
    prop_oneof![
        8 => (movement(), amount()).prop_map(|(movement, amount)| ApiStep::New(movement, amount)),
        // Small holds: no confirmation takes a destination near the balance limit.
        4 => (held_movement(), 1..60_u64)
            .prop_map(|(movement, amount)| ApiStep::Hold(movement, amount)),
        3 => (any::<usize>(), prop::option::of(any::<u64>()))
            .prop_map(|(n, share)| ApiStep::Confirm(n, share)),
        2 => any::<usize>().prop_map(ApiStep::Void),
        2 => any::<usize>().prop_map(ApiStep::Retry),
        1 => (any::<usize>(), movement(), amount())
            .prop_map(|(n, movement, amount)| ApiStep::Reuse(n, movement, amount)),
    ]
}

/// A deposit, withdrawal or transfer as sent: its id (`operationId` or `transferId`), what it
/// does and how much, and whether it asks for a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ApiRequest {
    id: Uuid,
    movement: Movement,
    amount: u64,
    pending: bool,
}

/// A request of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Move(ApiRequest),
    /// Confirms a hold: all of it, or this amount (never more than the hold).
    Confirm(Uuid, Option<u64>),
    Void(Uuid),
}

fn api_requests(steps: &[ApiStep]) -> Vec<Request> {
    let mut requests: Vec<Request> = Vec::new();
    // The moves, and the pending ones among them, for later steps to name.
    let mut moves: Vec<ApiRequest> = Vec::new();
    let mut holds: Vec<ApiRequest> = Vec::new();
    for step in steps {
        let request = match *step {
            ApiStep::New(movement, amount) | ApiStep::Hold(movement, amount) => {
                Request::Move(ApiRequest {
                    id: Uuid::new_v4(),
                    movement,
                    amount,
                    pending: matches!(step, ApiStep::Hold(..)),
                })
            }
            ApiStep::Confirm(n, share) if !holds.is_empty() => {
                let hold = holds[n % holds.len()];
                Request::Confirm(hold.id, share.map(|share| share % hold.amount + 1))
            }
            ApiStep::Void(n) if !holds.is_empty() => Request::Void(holds[n % holds.len()].id),
            ApiStep::Retry(n) if !requests.is_empty() => requests[n % requests.len()],
            ApiStep::Reuse(n, movement, amount) if !moves.is_empty() => Request::Move(ApiRequest {
                id: moves[n % moves.len()].id,
                movement,
                amount,
                pending: false,
            }),
            ApiStep::Confirm(..) | ApiStep::Void(_) | ApiStep::Retry(_) | ApiStep::Reuse(..) => {
                continue;
            }
        };
        if let Request::Move(sent) = request {
            moves.push(sent);
            if sent.pending {
                holds.push(sent);
            }
        }
        requests.push(request);
    }
    requests
}

/// What a client sees, with wallets by number.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// 200 with the balance after (a transfer: the source's, then the destination's).
    Applied { balances: Vec<u64>, replayed: bool },
    /// 200 `PENDING` with the unchanged balances, and for a withdrawal what is available
    /// after it.
    Held {
        balances: Vec<u64>,
        available: Option<u64>,
        replayed: bool,
    },
    /// 200 with the hold record of a confirm or a void.
    Resolved {
        status: &'static str,
        confirmed: Option<u64>,
        replayed: bool,
    },
    /// 409 naming the wallet that refused and its unchanged balance.
    Rejected {
        code: &'static str,
        wallet: usize,
        balance: u64,
        replayed: bool,
    },
    /// 404 `WALLET_NOT_FOUND` for this wallet.
    NotFound(usize),
    /// 400 `SAME_WALLET`.
    SameWallet,
    /// 422 `IDEMPOTENCY_KEY_REUSED`.
    Reused,
    /// 404 `HOLD_NOT_FOUND`.
    HoldNotFound,
    /// 409 `HOLD_NOT_PENDING`.
    HoldNotPending,
    /// Anything else: never expected.
    Other(String),
}

impl Seen {
    /// The same answer as a replay.
    fn replayed(&self) -> Self {
        let mut replay = self.clone();
        if let Self::Applied { replayed, .. }
        | Self::Held { replayed, .. }
        | Self::Resolved { replayed, .. }
        | Self::Rejected { replayed, .. } = &mut replay
        {
            *replayed = true;
        }
        replay
    }
}

/// A hold the model placed, and how it was resolved (with the answer a repeat replays).
struct Hold {
    request: ApiRequest,
    resolution: Option<(Resolution, Seen)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Confirmed(u64),
    Voided,
}

/// The model: balances and held amounts by wallet (present once created), one request at a
/// time. Stored are the applied, held and rejected requests, and the holds' resolutions; a
/// refusal (404, 400, 422, 409 `HOLD_NOT_PENDING`) stores nothing.
#[derive(Default)]
struct Model {
    balances: HashMap<usize, u64>,
    held: HashMap<usize, u64>,
    decided: HashMap<Uuid, (ApiRequest, Seen)>,
    holds: HashMap<Uuid, Hold>,
}

impl Model {
    fn answer(&mut self, request: Request) -> Seen {
        match request {
            Request::Move(request) => self.answer_move(request),
            Request::Confirm(hold, amount) => {
                self.resolve(hold, |held| Resolution::Confirmed(amount.unwrap_or(held)))
            }
            Request::Void(hold) => self.resolve(hold, |_| Resolution::Voided),
        }
    }

    fn answer_move(&mut self, request: ApiRequest) -> Seen {
        if let Movement::Transfer(from, to) = request.movement
            && from == to
        {
            return Seen::SameWallet;
        }
        if let Some((stored, answer)) = self.decided.get(&request.id) {
            return if *stored == request {
                answer.replayed()
            } else {
                Seen::Reused
            };
        }
        let answer = match self.decide(request) {
            Ok(answer) => answer,
            Err(refusal) => return refusal,
        };
        if let Seen::Held { .. } = answer {
            let hold = Hold {
                request,
                resolution: None,
            };
            self.holds.insert(request.id, hold);
        }
        self.decided.insert(request.id, (request, answer.clone()));
        answer
    }

    fn held(&self, wallet: usize) -> u64 {
        self.held.get(&wallet).copied().unwrap_or(0)
    }

    /// A new request's answer, or a refusal that stores nothing.
    fn decide(&mut self, request: ApiRequest) -> Result<Seen, Seen> {
        let amount = request.amount;
        let existing = |wallet: usize| {
            self.balances
                .get(&wallet)
                .copied()
                .ok_or(Seen::NotFound(wallet))
        };
        let rejected = |code, wallet, balance| Seen::Rejected {
            code,
            wallet,
            balance,
            replayed: false,
        };
        let applied = |balances| Seen::Applied {
            balances,
            replayed: false,
        };
        let held = |balances, available| Seen::Held {
            balances,
            available,
            replayed: false,
        };
        Ok(match request.movement {
            Movement::Deposit(wallet) => {
                let balance = self.balances.get(&wallet).copied().unwrap_or(0);
                if balance + amount > MAX_MONEY {
                    rejected("BALANCE_LIMIT_EXCEEDED", wallet, balance)
                } else {
                    self.balances.insert(wallet, balance + amount);
                    applied(vec![balance + amount])
                }
            }
            Movement::Withdraw(wallet) => {
                let (balance, reserved) = (existing(wallet)?, self.held(wallet));
                if balance - reserved < amount {
                    rejected("INSUFFICIENT_FUNDS", wallet, balance)
                } else if request.pending {
                    self.held.insert(wallet, reserved + amount);
                    held(vec![balance], Some(balance - reserved - amount))
                } else {
                    self.balances.insert(wallet, balance - amount);
                    applied(vec![balance - amount])
                }
            }
            Movement::Transfer(from, to) => {
                let (source, destination) = (existing(from)?, existing(to)?);
                let reserved = self.held(from);
                if source - reserved < amount {
                    rejected("INSUFFICIENT_FUNDS", from, source)
                } else if destination + amount > MAX_MONEY {
                    rejected("BALANCE_LIMIT_EXCEEDED", to, destination)
                } else if request.pending {
                    self.held.insert(from, reserved + amount);
                    held(vec![source, destination], None)
                } else {
                    self.balances.insert(from, source - amount);
                    self.balances.insert(to, destination + amount);
                    applied(vec![source - amount, destination + amount])
                }
            }
        })
    }

    /// A confirm or a void of `hold`: `action` of its held amount.
    fn resolve(&mut self, hold: Uuid, action: impl FnOnce(u64) -> Resolution) -> Seen {
        let Some(Hold {
            request,
            resolution,
        }) = self.holds.get_mut(&hold)
        else {
            return Seen::HoldNotFound;
        };
        let action = action(request.amount);
        match resolution {
            Some((done, answer)) if *done == action => return answer.replayed(),
            Some(_) => return Seen::HoldNotPending,
            None => {}
        }
        let (from, to) = match request.movement {
            Movement::Withdraw(from) => (from, None),
            Movement::Transfer(from, to) => (from, Some(to)),
            Movement::Deposit(_) => unreachable!("deposits hold nothing"),
        };
        let answer = Seen::Resolved {
            status: match action {
                Resolution::Confirmed(_) => "CONFIRMED",
                Resolution::Voided => "VOIDED",
            },
            confirmed: match action {
                Resolution::Confirmed(amount) => Some(amount),
                Resolution::Voided => None,
            },
            replayed: false,
        };
        *resolution = Some((action, answer.clone()));
        let held = request.amount;
        *self.held.entry(from).or_default() -= held;
        if let Resolution::Confirmed(amount) = action {
            *self.balances.entry(from).or_default() -= amount;
            if let Some(to) = to {
                *self.balances.entry(to).or_default() += amount;
            }
        }
        answer
    }
}

/// Sends `request` on `wallets` and reads what the client sees.
async fn send(app: &TestApp, wallets: &[Uuid], request: Request) -> Seen {
    let reply = match request {
        Request::Move(request) => {
            let ApiRequest { id, amount, .. } = request;
            let body = match request.movement {
                Movement::Deposit(w) | Movement::Withdraw(w) => {
                    let kind = kind(matches!(request.movement, Movement::Deposit(_)));
                    operation_body(wallets[w], kind, amount, Some(id))
                }
                Movement::Transfer(from, to) => {
                    transfer_body(wallets[from], wallets[to], amount, Some(id))
                }
            };
            let body = if request.pending {
                pending(body, None)
            } else {
                body
            };
            let response = match request.movement {
                Movement::Transfer(..) => app.transfer(&body).await,
                _ => app.operation(&body).await,
            };
            Reply::of(response).await
        }
        Request::Confirm(hold, amount) => {
            let body = amount.map(|amount| json!({ "amount": amount }));
            app.confirm_hold(hold, body.as_ref()).await
        }
        Request::Void(hold) => app.void_hold(hold).await,
    };
    let body = reply.json();
    let replayed = reply.replayed() == Some("true");
    let wallet = |value: &Value| wallets.iter().position(|w| *value == w.to_string());
    let transfer = matches!(
        request,
        Request::Move(ApiRequest {
            movement: Movement::Transfer(..),
            ..
        })
    );
    let balances = || {
        let fields: &[&str] = if transfer {
            &["fromBalance", "toBalance"]
        } else {
            &["balance"]
        };
        fields.iter().filter_map(|f| body[*f].as_u64()).collect()
    };
    let code = body["code"].as_str().unwrap_or_default();
    let status = body["status"].as_str().unwrap_or_default();
    match (reply.status, code) {
        (StatusCode::OK, _) if matches!(request, Request::Confirm(..) | Request::Void(_)) => {
            match status {
                "CONFIRMED" | "VOIDED" => Seen::Resolved {
                    status: if status == "CONFIRMED" {
                        "CONFIRMED"
                    } else {
                        "VOIDED"
                    },
                    confirmed: body["confirmedAmount"].as_u64(),
                    replayed,
                },
                _ => Seen::Other(reply.text()),
            }
        }
        (StatusCode::OK, _) if status == "APPLIED" => Seen::Applied {
            balances: balances(),
            replayed,
        },
        (StatusCode::OK, _) if status == "PENDING" => Seen::Held {
            balances: balances(),
            available: body["available"].as_u64(),
            replayed,
        },
        (StatusCode::CONFLICT, "INSUFFICIENT_FUNDS" | "BALANCE_LIMIT_EXCEEDED") => {
            match (wallet(&body["walletId"]), body["balance"].as_u64()) {
                (Some(wallet), Some(balance)) => Seen::Rejected {
                    code: if code == "INSUFFICIENT_FUNDS" {
                        "INSUFFICIENT_FUNDS"
                    } else {
                        "BALANCE_LIMIT_EXCEEDED"
                    },
                    wallet,
                    balance,
                    replayed,
                },
                _ => Seen::Other(reply.text()),
            }
        }
        (StatusCode::NOT_FOUND, "WALLET_NOT_FOUND") => match request {
            // Only a transfer's problem names the wallet: it has two.
            Request::Move(ApiRequest {
                movement: Movement::Deposit(w) | Movement::Withdraw(w),
                ..
            }) => Seen::NotFound(w),
            _ => wallet(&body["walletId"]).map_or(Seen::Other(reply.text()), Seen::NotFound),
        },
        (StatusCode::BAD_REQUEST, "SAME_WALLET") => Seen::SameWallet,
        (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED") => Seen::Reused,
        (StatusCode::NOT_FOUND, "HOLD_NOT_FOUND") => Seen::HoldNotFound,
        (StatusCode::CONFLICT, "HOLD_NOT_PENDING") => Seen::HoldNotPending,
        (status, _) => Seen::Other(format!("{status} {}", reply.text())),
    }
}

/// After a scenario: each wallet exists exactly when the model has it, with its balance and
/// held amount; each stored transfer reads back with the status it was answered with; each
/// hold reads back as the model resolved it.
async fn assert_state_is_the_models(app: &TestApp, wallets: &[Uuid], model: &Model) {
    for (n, wallet) in wallets.iter().enumerate() {
        match model.balances.get(&n) {
            Some(&balance) => {
                let held = model.held(n);
                let expected = (balance, held, balance - held);
                assert_eq!(app.funds(*wallet).await, expected, "wallet {n}");
            }
            None => {
                let (status, body) =
                    status_and_body(app.get(&format!("/api/v1/wallets/{wallet}")).await).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "wallet {n}: {body}");
            }
        }
    }
    for (id, (request, answer)) in &model.decided {
        if let Movement::Transfer(..) = request.movement {
            let (status, body) =
                status_and_body(app.get(&format!("/api/v1/transfers/{id}")).await).await;
            let expected = match answer {
                Seen::Applied { .. } => "APPLIED",
                Seen::Held { .. } => "PENDING",
                _ => "REJECTED",
            };
            assert_eq!(
                (status, body["status"].as_str()),
                (StatusCode::OK, Some(expected)),
                "transfer {id}: {body}"
            );
        }
    }
    for (id, hold) in &model.holds {
        let record = app.hold(*id).await.json();
        let (status, confirmed) = match hold.resolution {
            None => ("PENDING", None),
            Some((Resolution::Confirmed(amount), _)) => ("CONFIRMED", Some(amount)),
            Some((Resolution::Voided, _)) => ("VOIDED", None),
        };
        assert_eq!(
            (
                record["status"].as_str(),
                record["confirmedAmount"].as_u64()
            ),
            (Some(status), confirmed),
            "hold {id}: {record}"
        );
    }
    app.assert_ledger_consistent().await;
}

#[test]
fn the_service_decides_deposits_withdrawals_transfers_and_holds_like_the_in_memory_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // One service for every case; each case has wallets of its own.
    let app = runtime.block_on(spawn_app());

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 32,
        max_shrink_iters: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(api_step(), 1..60), |steps| {
            // Two wallets exist from the start, so that transfers between them are decided
            // early; the third waits for a deposit, so that transfers meet a missing wallet.
            let opening = [0, 1].map(|wallet| ApiStep::New(Movement::Deposit(wallet), 40));
            let requests = api_requests(&[&opening[..], &steps].concat());
            let wallets: Vec<Uuid> = (0..WALLETS).map(|_| Uuid::new_v4()).collect();
            let mut model = Model::default();
            for (i, request) in requests.iter().enumerate() {
                let seen = runtime.block_on(send(&app, &wallets, *request));
                let expected = model.answer(*request);
                prop_assert_eq!(seen, expected, "request {} of {:?}", i, requests);
            }
            runtime.block_on(assert_state_is_the_models(&app, &wallets, &model));
            Ok(())
        })
        .unwrap();
}
