//! Jepsen's bank test over HTTP. Clients deposit to, withdraw from and transfer between a few
//! hot wallets; each operation carries its id (`operationId`, `transferId`), and a client
//! retries it with that id until it sees a definitive answer (200 or 409), as a careful
//! payments client does. The acknowledged operations are the ground truth that [`verify`]
//! holds the service and its database to.

use super::app::TestApp;
use super::reply::Reply;
use super::{kind, ledger, operation_body, transfer_body};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

/// A request that takes this long is reported as a hang (far past any request timeout the
/// tests configure), and then retried like any request whose outcome was not seen.
const REQUEST_BACKSTOP: Duration = Duration::from_secs(30);

/// Pause before retrying an outcome not seen. Shorter than the service's `Retry-After`, to
/// probe recovery quickly; a real client would honour the header.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Longest a single operation may stay unsettled through outages before the test gives up.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// Longest [`Workload::wait_for_progress`] waits: recovery that takes longer is a failure.
const PROGRESS_LIMIT: Duration = Duration::from_secs(60);

/// Largest amount moved by one operation; wallets start with a few times this, so balances
/// wander near zero and withdrawals are rejected now and then.
const MAX_AMOUNT: u64 = 20;

/// What an operation does to the wallets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Deposit(Uuid),
    Withdraw(Uuid),
    Transfer { from: Uuid, to: Uuid },
}

impl Move {
    /// The body of its request, named by `id`, and the path it is posted to.
    fn request(self, amount: u64, id: Uuid) -> (Value, &'static str) {
        match self {
            Self::Deposit(wallet) | Self::Withdraw(wallet) => {
                let deposit = matches!(self, Self::Deposit(_));
                let body = operation_body(wallet, kind(deposit), amount, Some(id));
                (body, "/api/v1/wallet")
            }
            Self::Transfer { from, to } => (
                transfer_body(from, to, amount, Some(id)),
                "/api/v1/transfers",
            ),
        }
    }

    /// The item of `POST /api/v1/batches` that asks for it, named by `id`: the body of its
    /// own endpoint with its `operationType`.
    pub fn batch_item(self, amount: u64, id: Uuid) -> Value {
        let (mut item, _) = self.request(amount, id);
        if let Self::Transfer { .. } = self {
            item["operationType"] = json!("TRANSFER");
        }
        item
    }

    /// The field of its record and of its rejection that carries its id.
    pub fn id_field(self) -> &'static str {
        match self {
            Self::Transfer { .. } => "transferId",
            _ => "operationId",
        }
    }
}

/// An operation the service answered definitively.
#[derive(Debug, Clone)]
pub struct Settled {
    id: Uuid,
    movement: Move,
    amount: i64,
    /// 200 (applied) or 409 (rejected for insufficient funds).
    applied: bool,
}

/// One history item, as a wallet's history names it: the wallet, the `operationType` and the
/// id the client chose (a transfer's legs carry its `transferId`).
type EntryKey = (Uuid, &'static str, Uuid);

impl Settled {
    /// An operation named `id` that the service decided and stored: `applied` (200) or
    /// rejected for insufficient funds (409), e.g. an item of a batch.
    pub fn new(id: Uuid, movement: Move, amount: u64, applied: bool) -> Self {
        Self {
            id,
            movement,
            amount: i64::try_from(amount).expect("an amount fits an i64"),
            applied,
        }
    }

    /// The id the client named it with: its `operationId` or `transferId`.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Applied (200), or rejected for insufficient funds (409).
    pub fn applied(&self) -> bool {
        self.applied
    }

    /// What it did to `wallet`'s balance.
    fn delta(&self, wallet: Uuid) -> i64 {
        if !self.applied {
            return 0;
        }
        match self.movement {
            Move::Deposit(w) if w == wallet => self.amount,
            Move::Withdraw(w) if w == wallet => -self.amount,
            Move::Transfer { from, .. } if from == wallet => -self.amount,
            Move::Transfer { to, .. } if to == wallet => self.amount,
            _ => 0,
        }
    }

    fn wallets(&self) -> Vec<Uuid> {
        match self.movement {
            Move::Deposit(wallet) | Move::Withdraw(wallet) => vec![wallet],
            Move::Transfer { from, to } => vec![from, to],
        }
    }

    pub fn is_transfer(&self) -> bool {
        matches!(self.movement, Move::Transfer { .. })
    }

    /// The history items it must leave, each with its status: one for a deposit or a
    /// withdrawal; both legs of an applied transfer; only the rejected out leg of a rejected
    /// one.
    fn entries(&self) -> Vec<(EntryKey, &'static str)> {
        let status = if self.applied { "APPLIED" } else { "REJECTED" };
        match self.movement {
            Move::Deposit(wallet) => vec![((wallet, "DEPOSIT", self.id), status)],
            Move::Withdraw(wallet) => vec![((wallet, "WITHDRAW", self.id), status)],
            Move::Transfer { from, to } => {
                let mut entries = vec![((from, "TRANSFER_OUT", self.id), status)];
                if self.applied {
                    entries.push(((to, "TRANSFER_IN", self.id), status));
                }
                entries
            }
        }
    }
}

/// What the clients saw, counted as they go.
#[derive(Default)]
struct Stats {
    acknowledged: AtomicU64,
    unavailable: AtomicU64,
    /// 503s without `Retry-After` or without code `SERVICE_UNAVAILABLE`: not a clear answer.
    unclear_unavailable: AtomicU64,
    other_5xx: AtomicU64,
    transport_errors: AtomicU64,
    slowest_request_ms: AtomicU64,
    /// Answers the contract does not allow here (4xx other than 409, malformed bodies...).
    problems: Mutex<Vec<String>>,
}

impl Stats {
    fn problem(&self, text: String) {
        self.problems.lock().unwrap().push(text);
    }
}

/// Clients running against one service address until [`Workload::stop`].
pub struct Workload {
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    clients: JoinSet<Vec<Settled>>,
    funding: Vec<Settled>,
    wallets: Vec<Uuid>,
}

impl Workload {
    /// Funds `wallets` new wallets with `initial` each, then starts `clients` clients on
    /// `app`'s address (which a restarted server keeps).
    pub async fn start(app: &TestApp, wallets: usize, clients: u64, initial: u64) -> Self {
        Self::start_across(&[app], wallets, clients, initial).await
    }

    /// As [`Self::start`], with the clients spread over the instances `apps` (client `n` on
    /// `apps[n % apps.len()]`), all on the same wallets; the first funds them.
    pub async fn start_across(
        apps: &[&TestApp],
        wallets: usize,
        clients: u64,
        initial: u64,
    ) -> Self {
        let base_urls: Vec<String> = apps.iter().map(|app| app.url("")).collect();
        let base_url = &base_urls[0];
        let http = Client::builder()
            .timeout(REQUEST_BACKSTOP)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        let stats = Arc::new(Stats::default());
        let wallets: Vec<Uuid> = (0..wallets).map(|_| Uuid::new_v4()).collect();
        let mut funding = Vec::new();
        for &wallet in &wallets {
            let op = Op::new(Move::Deposit(wallet), initial);
            funding.extend(op.settle(&http, base_url, &stats).await);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|seed| {
                run_client(
                    http.clone(),
                    base_urls[seed as usize % base_urls.len()].clone(),
                    wallets.clone(),
                    seed,
                    stats.clone(),
                    stop.clone(),
                )
            })
            .collect();
        Self {
            stats,
            stop,
            clients,
            funding,
            wallets,
        }
    }

    /// The wallets under load; each gets an equal share of the traffic.
    pub fn wallets(&self) -> &[Uuid] {
        &self.wallets
    }

    /// Definitive answers (200 or 409) seen so far.
    pub fn acknowledged(&self) -> u64 {
        self.stats.acknowledged.load(Ordering::Relaxed)
    }

    /// 503s seen so far.
    pub fn unavailable(&self) -> u64 {
        self.stats.unavailable.load(Ordering::Relaxed)
    }

    /// Waits until the clients get `more` definitive answers: the service serves again.
    /// Panics after [`PROGRESS_LIMIT`], naming `what` it was waiting for.
    pub async fn wait_for_progress(&self, more: u64, what: &str) {
        let target = self.stats.acknowledged.load(Ordering::Relaxed) + more;
        self.wait_until(what, || {
            self.stats.acknowledged.load(Ordering::Relaxed) >= target
        })
        .await;
    }

    /// Waits until a 503 beyond the first `seen` arrives: requests stopped hanging on a
    /// broken database and got their answer. Panics after [`PROGRESS_LIMIT`].
    pub async fn wait_for_unavailable(&self, seen: u64, what: &str) {
        self.wait_until(what, || self.unavailable() > seen).await;
    }

    async fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < PROGRESS_LIMIT,
                "{what}: nothing after {PROGRESS_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the clients once their current operation is settled and returns the log.
    pub async fn stop(self) -> (Vec<Settled>, Counts) {
        self.stop.store(true, Ordering::Relaxed);
        let mut settled = self.funding;
        for log in self.clients.join_all().await {
            settled.extend(log);
        }
        let stats = &self.stats;
        let counts = Counts {
            unavailable: stats.unavailable.load(Ordering::Relaxed),
            unclear_unavailable: stats.unclear_unavailable.load(Ordering::Relaxed),
            other_5xx: stats.other_5xx.load(Ordering::Relaxed),
            transport_errors: stats.transport_errors.load(Ordering::Relaxed),
            slowest_request: Duration::from_millis(
                stats.slowest_request_ms.load(Ordering::Relaxed),
            ),
            problems: std::mem::take(&mut *stats.problems.lock().unwrap()),
        };
        (settled, counts)
    }
}

/// What the clients saw over the whole run.
#[derive(Debug)]
pub struct Counts {
    pub unavailable: u64,
    pub unclear_unavailable: u64,
    pub other_5xx: u64,
    pub transport_errors: u64,
    pub slowest_request: Duration,
    pub problems: Vec<String>,
}

/// One client: random operations on random wallets, each settled before the next; with two
/// wallets or more, a third of them are transfers between two of them. The client's `seed`
/// fixes its sequence of operations, so a run's requests are the same every time (their
/// interleaving is not).
async fn run_client(
    http: Client,
    base_url: String,
    wallets: Vec<Uuid>,
    seed: u64,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Vec<Settled> {
    let mut random = SmallRng::seed_from_u64(seed);
    let mut settled = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = wallets.len();
        let first = random.random_range(0..n);
        let movement = match random.random_range(0..3) {
            0 if n > 1 => Move::Transfer {
                from: wallets[first],
                to: wallets[(first + random.random_range(1..n)) % n],
            },
            0 | 1 => Move::Deposit(wallets[first]),
            _ => Move::Withdraw(wallets[first]),
        };
        let amount = random.random_range(1..=MAX_AMOUNT);
        let op = Op::new(movement, amount);
        settled.extend(op.settle(&http, &base_url, &stats).await);
    }
    settled
}

/// An operation on its way: the body is fixed once, so every retry is the same request.
struct Op {
    id: Uuid,
    movement: Move,
    amount: u64,
    body: Value,
    path: &'static str,
}

impl Op {
    fn new(movement: Move, amount: u64) -> Self {
        let id = Uuid::new_v4();
        let (body, path) = movement.request(amount, id);
        Self {
            id,
            movement,
            amount,
            body,
            path,
        }
    }

    /// Sends until the answer is definitive. `None` when the answer breaks the contract
    /// (recorded as a problem) or never comes within [`SETTLE_LIMIT`].
    async fn settle(&self, http: &Client, base_url: &str, stats: &Stats) -> Option<Settled> {
        let url = format!("{base_url}{}", self.path);
        let first_sent = Instant::now();
        loop {
            if first_sent.elapsed() > SETTLE_LIMIT {
                stats.problem(format!(
                    "{}: no definitive answer in {SETTLE_LIMIT:?}",
                    self.id
                ));
                return None;
            }
            let sent = Instant::now();
            let answer = match http.post(&url).json(&self.body).send().await {
                // A body cut off by a crash is an outcome not seen, like a lost connection.
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response.headers().contains_key("retry-after");
                    response
                        .bytes()
                        .await
                        .map(|body| (status, retry_after, body))
                }
                Err(error) => Err(error),
            };
            let took = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
            stats.slowest_request_ms.fetch_max(took, Ordering::Relaxed);
            let (status, retry_after, body) = match answer {
                Ok(answer) => answer,
                Err(_) => {
                    stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match status {
                StatusCode::OK | StatusCode::CONFLICT => {
                    stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                    return self.decided(status, &body, stats);
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    stats.unavailable.fetch_add(1, Ordering::Relaxed);
                    if !retry_after || body["code"] != "SERVICE_UNAVAILABLE" {
                        stats.unclear_unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                }
                status if status.is_server_error() => {
                    stats.other_5xx.fetch_add(1, Ordering::Relaxed);
                    stats.problem(format!("{}: {status} {body}", self.id));
                }
                status => {
                    stats.problem(format!("{}: unexpected {status} {body}", self.id));
                    return None;
                }
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// The record of a 200 or 409, checked against the request.
    fn decided(&self, status: StatusCode, body: &Value, stats: &Stats) -> Option<Settled> {
        let applied = status == StatusCode::OK;
        let named = body[self.movement.id_field()] == self.id.to_string();
        let consistent = named
            && if applied {
                body["status"] == "APPLIED"
            } else {
                body["code"] == "INSUFFICIENT_FUNDS"
            };
        if !consistent {
            stats.problem(format!("{}: {status} with body {body}", self.id));
            return None;
        }
        Some(Settled {
            id: self.id,
            movement: self.movement,
            amount: i64::try_from(self.amount).unwrap(),
            applied,
        })
    }
}

/// `POST path` on `app`, with a JSON body or none, sent again and again until the service
/// answers with anything but a 503 (a lost connection or an answer cut off by a crash is an
/// outcome not seen, too), as a client that named its request retries it. Panics after
/// [`SETTLE_LIMIT`].
pub async fn post_until_answered(app: &TestApp, path: &str, body: Option<&Value>) -> Reply {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < SETTLE_LIMIT,
            "POST {path}: no answer in {SETTLE_LIMIT:?}"
        );
        let mut request = app.client.post(app.url(path)).timeout(REQUEST_BACKSTOP);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Ok(response) = request.send().await {
            let (status, headers) = (response.status(), response.headers().clone());
            if let Ok(body) = response.bytes().await
                && status != StatusCode::SERVICE_UNAVAILABLE
            {
                return Reply {
                    status,
                    headers,
                    body,
                };
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// What the service and its database hold, compared with what the clients were told.
#[derive(Debug, Default)]
pub struct Findings {
    /// Definitive answers: applied (200) plus rejected (409).
    pub acknowledged: usize,
    pub applied: usize,
    pub rejected: usize,
    /// Acknowledged transfers, applied or rejected (counted in the numbers above too).
    pub transfers: usize,
    pub transfers_applied: usize,
    /// History items of acknowledged operations that are missing (a transfer leaves two).
    pub lost: usize,
    /// Extra history items of an operation (nothing may be recorded twice).
    pub duplicated: usize,
    /// Every other broken invariant, described.
    pub violations: Vec<String>,
}

/// The bank test's end checks, through the API of `app` and with SQL on its database:
/// - every acknowledged operation is in its wallets' histories exactly once, as answered: a
///   deposit or withdrawal as one item, an applied transfer as its `TRANSFER_OUT` and its
///   `TRANSFER_IN` (never one leg without the other), a rejected transfer as its rejected
///   `TRANSFER_OUT` only;
/// - nothing else is in the histories or in the transfers table of its wallets (every
///   operation sent was settled, so anything more was applied without being acknowledged);
///   a test may move money on wallets of its own beside the load;
/// - each balance (API and table) is the acknowledged net: applied deposits and incoming
///   transfers minus applied withdrawals and outgoing transfers, from an empty wallet;
/// - replaying the entries in order gives every stored `balance_after`, which is never
///   negative; a rejection leaves the balance unchanged and was larger than it; the
///   balance equals the newest applied `balance_after`;
/// - the stored ledger's own invariants ([`ledger::violations`]): money conserved, every
///   stored transfer with both legs or only its rejected out leg.
pub async fn verify(app: &TestApp, settled: &[Settled]) -> Findings {
    let transfers = settled.iter().filter(|op| op.is_transfer());
    let mut findings = Findings {
        acknowledged: settled.len(),
        applied: settled.iter().filter(|op| op.applied).count(),
        rejected: settled.iter().filter(|op| !op.applied).count(),
        transfers: transfers.clone().count(),
        transfers_applied: transfers.filter(|op| op.applied).count(),
        ..Findings::default()
    };
    let wallets: HashSet<Uuid> = settled.iter().flat_map(Settled::wallets).collect();
    let mut in_history: HashMap<EntryKey, Vec<Value>> = HashMap::new();
    for &wallet in &wallets {
        for record in app.history(wallet).await {
            match entry_key(wallet, &record) {
                Some(key) => in_history.entry(key).or_default().push(record),
                None => findings
                    .violations
                    .push(format!("wallet {wallet}: malformed history item {record}")),
            }
        }
        let expected = net(settled, wallet);
        let balance = app.balance(wallet).await;
        if i64::try_from(balance) != Ok(expected) {
            findings.violations.push(format!(
                "wallet {wallet}: API balance {balance} != acknowledged net {expected}"
            ));
        }
    }
    let mut expected_keys = HashSet::new();
    for op in settled {
        let entries = op.entries();
        let mut found = 0;
        for (key, status) in &entries {
            expected_keys.insert(*key);
            match in_history.get(key).map_or(&[][..], Vec::as_slice) {
                [] => findings.lost += 1,
                [record] => {
                    found += 1;
                    check_record(op, *key, status, record, &mut findings.violations);
                }
                [_, more @ ..] => {
                    found += 1;
                    findings.duplicated += more.len();
                }
            }
        }
        if found > 0 && found < entries.len() {
            findings.violations.push(format!(
                "transfer {}: one leg without the other in the histories",
                op.id
            ));
        }
    }
    for (key, records) in &in_history {
        if !expected_keys.contains(key) {
            findings.violations.push(format!(
                "{key:?} is in the history but was never acknowledged: {records:?}"
            ));
        }
    }
    let mut db = PgConnection::connect(&app.database_url)
        .await
        .expect("connect to the test's database");
    let wallets: Vec<Uuid> = wallets.into_iter().collect();
    replay_ledger(&mut db, &wallets, settled, &mut findings.violations).await;
    stored_transfers_as_answered(&mut db, &wallets, settled, &mut findings.violations).await;
    findings
        .violations
        .extend(ledger::violations(&mut db).await);
    let _ = db.close().await;
    findings
}

/// The acknowledged net of `wallet`: where its balance must be.
fn net(settled: &[Settled], wallet: Uuid) -> i64 {
    settled.iter().map(|op| op.delta(wallet)).sum()
}

/// How `record`, an item of `wallet`'s history, is named: by its `transferId` for a leg of a
/// transfer, by its `operationId` otherwise.
fn entry_key(wallet: Uuid, record: &Value) -> Option<EntryKey> {
    let (kind, id_field) = match record["operationType"].as_str()? {
        "DEPOSIT" => ("DEPOSIT", "operationId"),
        "WITHDRAW" => ("WITHDRAW", "operationId"),
        "TRANSFER_OUT" => ("TRANSFER_OUT", "transferId"),
        "TRANSFER_IN" => ("TRANSFER_IN", "transferId"),
        _ => return None,
    };
    let id = Uuid::try_parse(record[id_field].as_str()?).ok()?;
    Some((wallet, kind, id))
}

/// A history item says what the client was told.
fn check_record(
    op: &Settled,
    (wallet, kind, _): EntryKey,
    status: &str,
    record: &Value,
    violations: &mut Vec<String>,
) {
    let mut consistent = record["walletId"] == wallet.to_string()
        && record["amount"].as_i64() == Some(op.amount)
        && record["status"] == status;
    if let Move::Transfer { from, to } = op.movement {
        let counterparty = if wallet == from { to } else { from };
        // The out leg is named by the transfer's id, the in leg by an id of its own.
        let own_id = (record["operationId"] == op.id.to_string()) == (kind == "TRANSFER_OUT");
        consistent &= record["counterpartyWalletId"] == counterparty.to_string() && own_id;
    }
    if !consistent {
        violations.push(format!(
            "operation {} answered {status} {:?} {} but recorded {record}",
            op.id, op.movement, op.amount
        ));
    }
}

/// A row of `operations`: one history item.
#[derive(sqlx::FromRow)]
struct Entry {
    wallet_id: Uuid,
    id: Uuid,
    /// Set on both legs of a transfer.
    transfer_id: Option<Uuid>,
    kind: String,
    amount: i64,
    status: String,
    balance_after: i64,
}

/// The database side: replays each of `wallets`' entries in commit order (`seq`).
async fn replay_ledger(
    db: &mut PgConnection,
    wallets: &[Uuid],
    settled: &[Settled],
    violations: &mut Vec<String>,
) {
    let entries: Vec<Entry> = sqlx::query_as(
        "SELECT wallet_id, id, transfer_id, kind, amount, status, balance_after FROM operations \
         WHERE wallet_id = ANY($1) ORDER BY wallet_id, seq",
    )
    .bind(wallets)
    .fetch_all(&mut *db)
    .await
    .unwrap();
    let stored: HashMap<Uuid, i64> =
        sqlx::query_as("SELECT id, balance FROM wallets WHERE id = ANY($1)")
            .bind(wallets)
            .fetch_all(&mut *db)
            .await
            .unwrap()
            .into_iter()
            .collect();

    // A transfer's entries carry its id in `transfer_id`; the others are named by their own.
    let recorded: HashSet<Uuid> = entries
        .iter()
        .map(|entry| entry.transfer_id.unwrap_or(entry.id))
        .collect();
    let missing = settled
        .iter()
        .filter(|op| !recorded.contains(&op.id))
        .count();
    let expected_rows: usize = settled.iter().map(|op| op.entries().len()).sum();
    if missing > 0 || entries.len() != expected_rows {
        violations.push(format!(
            "operations table: {} rows for {expected_rows} entries of {} acknowledged \
             operations, {missing} of them missing",
            entries.len(),
            settled.len()
        ));
    }
    let mut balances: HashMap<Uuid, i64> = HashMap::new();
    let mut newest_applied: HashMap<Uuid, i64> = HashMap::new();
    for Entry {
        wallet_id: wallet,
        id,
        kind,
        amount,
        status,
        balance_after,
        ..
    } in entries
    {
        let balance = balances.entry(wallet).or_default();
        let before = *balance;
        match (status.as_str(), kind.as_str()) {
            ("APPLIED", "DEPOSIT" | "TRANSFER_IN") => *balance += amount,
            ("APPLIED", "WITHDRAW" | "TRANSFER_OUT") => *balance -= amount,
            ("REJECTED", "WITHDRAW" | "TRANSFER_OUT") if amount > before => {}
            _ => violations.push(format!(
                "operation {id}: {status} {kind} {amount} on {before}"
            )),
        }
        if status == "APPLIED" {
            newest_applied.insert(wallet, balance_after);
        }
        if balance_after != *balance || balance_after < 0 {
            violations.push(format!(
                "operation {id}: balance_after {balance_after}, replayed balance {balance}"
            ));
        }
    }
    for wallet in settled
        .iter()
        .flat_map(Settled::wallets)
        .collect::<HashSet<_>>()
    {
        let expected = net(settled, wallet);
        let replayed = balances.get(&wallet).copied().unwrap_or_default();
        let newest = newest_applied.get(&wallet).copied().unwrap_or_default();
        let stored = stored.get(&wallet).copied();
        if stored != Some(expected) || replayed != expected || newest != expected {
            violations.push(format!(
                "wallet {wallet}: stored balance {stored:?}, replayed history {replayed}, \
                 newest balance_after {newest}, acknowledged net {expected}"
            ));
        }
    }
}

/// The transfers table holds exactly the acknowledged transfers from `wallets`, each as it
/// was answered.
async fn stored_transfers_as_answered(
    db: &mut PgConnection,
    wallets: &[Uuid],
    settled: &[Settled],
    violations: &mut Vec<String>,
) {
    let stored: HashMap<Uuid, (Uuid, Uuid, i64, String)> = sqlx::query_as(
        "SELECT id, from_wallet_id, to_wallet_id, amount, status FROM transfers \
         WHERE from_wallet_id = ANY($1)",
    )
    .bind(wallets)
    .fetch_all(&mut *db)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, from, to, amount, status)| (id, (from, to, amount, status)))
    .collect();
    let mut acknowledged = 0;
    for op in settled {
        let Move::Transfer { from, to } = op.movement else {
            continue;
        };
        acknowledged += 1;
        let status = if op.applied { "APPLIED" } else { "REJECTED" };
        let answered = (from, to, op.amount, status.to_owned());
        match stored.get(&op.id) {
            Some(row) if *row == answered => {}
            row => violations.push(format!(
                "transfer {}: answered {answered:?}, stored {row:?}",
                op.id
            )),
        }
    }
    if stored.len() != acknowledged {
        violations.push(format!(
            "transfers table: {} rows for {acknowledged} acknowledged transfers",
            stored.len()
        ));
    }
}

/// One line of counts, as the soak script prints them.
pub struct Summary<'a> {
    pub cycles: usize,
    pub counts: &'a Counts,
    pub findings: &'a Findings,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            cycles,
            counts,
            findings,
        } = self;
        write!(
            f,
            "cycles={cycles} acknowledged={} (applied={} rejected={}) transfers={} \
             transfers_applied={} lost={} duplicated={} 503={} unclear_503={} other_5xx={} \
             transport_errors={} violations={} slowest_request_ms={}",
            findings.acknowledged,
            findings.applied,
            findings.rejected,
            findings.transfers,
            findings.transfers_applied,
            findings.lost,
            findings.duplicated,
            counts.unavailable,
            counts.unclear_unavailable,
            counts.other_5xx,
            counts.transport_errors,
            findings.violations.len() + counts.problems.len(),
            counts.slowest_request.as_millis(),
        )
    }
}
