//! Jepsen's bank test over HTTP. Clients deposit to and withdraw from a few hot wallets; each
//! operation carries an `operationId`, and a client retries it with that id until it sees a
//! definitive answer (200 or 409), as a careful payments client does. The acknowledged
//! operations are the ground truth that [`verify`] holds the service and its database to.

use super::app::TestApp;
use super::{kind, operation_body};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::Value;
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

/// An operation the service answered definitively.
#[derive(Debug, Clone)]
pub struct Settled {
    id: Uuid,
    wallet: Uuid,
    deposit: bool,
    amount: i64,
    /// 200 (applied) or 409 (rejected for insufficient funds).
    applied: bool,
}

impl Settled {
    fn delta(&self) -> i64 {
        match (self.applied, self.deposit) {
            (false, _) => 0,
            (true, true) => self.amount,
            (true, false) => -self.amount,
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
        let base_url = app.url("");
        let http = Client::builder()
            .timeout(REQUEST_BACKSTOP)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        let stats = Arc::new(Stats::default());
        let wallets: Vec<Uuid> = (0..wallets).map(|_| Uuid::new_v4()).collect();
        let mut funding = Vec::new();
        for &wallet in &wallets {
            let op = Op::new(wallet, true, initial);
            funding.extend(op.settle(&http, &base_url, &stats).await);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|seed| {
                run_client(
                    http.clone(),
                    base_url.clone(),
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

/// One client: random operations on random wallets, each settled before the next. The client's
/// `seed` fixes its sequence of operations, so a run's requests are the same every time (their
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
        let wallet = wallets[random.random_range(0..wallets.len())];
        let deposit = random.random_bool(0.5);
        let amount = random.random_range(1..=MAX_AMOUNT);
        let op = Op::new(wallet, deposit, amount);
        settled.extend(op.settle(&http, &base_url, &stats).await);
    }
    settled
}

/// An operation on its way: the body is fixed once, so every retry is the same request.
struct Op {
    id: Uuid,
    wallet: Uuid,
    deposit: bool,
    amount: u64,
    body: Value,
}

impl Op {
    fn new(wallet: Uuid, deposit: bool, amount: u64) -> Self {
        let id = Uuid::new_v4();
        let body = operation_body(wallet, kind(deposit), amount, Some(id));
        Self {
            id,
            wallet,
            deposit,
            amount,
            body,
        }
    }

    /// Sends until the answer is definitive. `None` when the answer breaks the contract
    /// (recorded as a problem) or never comes within [`SETTLE_LIMIT`].
    async fn settle(&self, http: &Client, base_url: &str, stats: &Stats) -> Option<Settled> {
        let url = format!("{base_url}/api/v1/wallet");
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
        let consistent = if applied {
            body["status"] == "APPLIED" && body["operationId"] == self.id.to_string()
        } else {
            body["code"] == "INSUFFICIENT_FUNDS" && body["operationId"] == self.id.to_string()
        };
        if !consistent {
            stats.problem(format!("{}: {status} with body {body}", self.id));
            return None;
        }
        Some(Settled {
            id: self.id,
            wallet: self.wallet,
            deposit: self.deposit,
            amount: i64::try_from(self.amount).unwrap(),
            applied,
        })
    }
}

/// What the service and its database hold, compared with what the clients were told.
#[derive(Debug, Default)]
pub struct Findings {
    /// Definitive answers: applied (200) plus rejected (409).
    pub acknowledged: usize,
    pub applied: usize,
    pub rejected: usize,
    /// Acknowledged but missing from the history.
    pub lost: usize,
    /// Extra history records of an operation id (nothing may be recorded twice).
    pub duplicated: usize,
    /// Every other broken invariant, described.
    pub violations: Vec<String>,
}

/// The bank test's end checks, through the API of `app` and with SQL on its database:
/// - every acknowledged operation is in its wallet's history exactly once, as answered;
/// - nothing else is in the history (every operation sent was settled, so anything more
///   was applied without being acknowledged);
/// - each balance (API and table) is the acknowledged net: applied deposits minus applied
///   withdrawals, which started from an empty wallet;
/// - replaying the history in order gives every stored `balance_after`, which is never
///   negative; a rejection leaves the balance unchanged and was larger than it; the
///   balance equals the newest applied `balance_after`.
pub async fn verify(app: &TestApp, settled: &[Settled]) -> Findings {
    let mut findings = Findings {
        acknowledged: settled.len(),
        applied: settled.iter().filter(|op| op.applied).count(),
        rejected: settled.iter().filter(|op| !op.applied).count(),
        ..Findings::default()
    };
    let wallets: HashSet<Uuid> = settled.iter().map(|op| op.wallet).collect();
    let mut in_history: HashMap<String, Vec<Value>> = HashMap::new();
    for &wallet in &wallets {
        for record in app.history(wallet).await {
            let id = record["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            in_history.entry(id).or_default().push(record);
        }
        let expected: i64 = settled
            .iter()
            .filter(|op| op.wallet == wallet)
            .map(Settled::delta)
            .sum();
        let balance = app.balance(wallet).await;
        if i64::try_from(balance) != Ok(expected) {
            findings.violations.push(format!(
                "wallet {wallet}: API balance {balance} != acknowledged net {expected}"
            ));
        }
    }
    let acknowledged: HashSet<String> = settled.iter().map(|op| op.id.to_string()).collect();
    for op in settled {
        let records = in_history
            .get(&op.id.to_string())
            .map_or(&[][..], Vec::as_slice);
        match records {
            [] => findings.lost += 1,
            [record] => check_record(op, record, &mut findings.violations),
            [_, more @ ..] => findings.duplicated += more.len(),
        }
    }
    for (id, records) in &in_history {
        if !acknowledged.contains(id) {
            findings.violations.push(format!(
                "operation {id} is in the history but was never acknowledged: {records:?}"
            ));
        }
    }
    replay_ledger(&app.database_url, settled, &mut findings.violations).await;
    findings
}

/// A history record says what the client was told.
fn check_record(op: &Settled, record: &Value, violations: &mut Vec<String>) {
    let kind = if op.deposit { "DEPOSIT" } else { "WITHDRAW" };
    let status = if op.applied { "APPLIED" } else { "REJECTED" };
    if record["walletId"] != op.wallet.to_string()
        || record["operationType"] != kind
        || record["amount"].as_i64() != Some(op.amount)
        || record["status"] != status
    {
        violations.push(format!(
            "operation {} answered {status} {kind} {} but recorded {record}",
            op.id, op.amount
        ));
    }
}

/// The database side: replays each wallet's operations in commit order (`seq`).
async fn replay_ledger(database_url: &str, settled: &[Settled], violations: &mut Vec<String>) {
    let mut db = PgConnection::connect(database_url)
        .await
        .expect("connect to the test's database");
    let operations: Vec<(Uuid, Uuid, String, i64, String, i64)> = sqlx::query_as(
        "SELECT wallet_id, id, kind, amount, status, balance_after FROM operations \
         ORDER BY wallet_id, seq",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let stored: HashMap<Uuid, i64> = sqlx::query_as("SELECT id, balance FROM wallets")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let _ = db.close().await;

    let recorded: HashSet<Uuid> = operations.iter().map(|row| row.1).collect();
    let missing = settled
        .iter()
        .filter(|op| !recorded.contains(&op.id))
        .count();
    if missing > 0 || operations.len() != settled.len() {
        violations.push(format!(
            "operations table: {} rows for {} acknowledged operations, {missing} of them missing",
            operations.len(),
            settled.len()
        ));
    }
    let mut balances: HashMap<Uuid, i64> = HashMap::new();
    let mut newest_applied: HashMap<Uuid, i64> = HashMap::new();
    for (wallet, id, kind, amount, status, balance_after) in operations {
        let balance = balances.entry(wallet).or_default();
        let before = *balance;
        match (status.as_str(), kind.as_str()) {
            ("APPLIED", "DEPOSIT") => *balance += amount,
            ("APPLIED", "WITHDRAW") => *balance -= amount,
            ("REJECTED", "WITHDRAW") if amount > before => {}
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
    for wallet in settled.iter().map(|op| op.wallet).collect::<HashSet<_>>() {
        let expected: i64 = settled
            .iter()
            .filter(|op| op.wallet == wallet)
            .map(Settled::delta)
            .sum();
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
            "cycles={cycles} acknowledged={} (applied={} rejected={}) lost={} duplicated={} \
             503={} unclear_503={} other_5xx={} transport_errors={} violations={} \
             slowest_request_ms={}",
            findings.acknowledged,
            findings.applied,
            findings.rejected,
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
