//! The wallet API as the load generator sees it: one shared keep-alive client, URLs built once,
//! and every answer classified into the few outcomes the report and the verifier care about.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::workload::{Op, Settle, Write, WriteKind};

/// The most items one batch may hold: the service's default `WALLET_MAX_BATCH_ITEMS`.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// `timeoutSeconds` of every hold a payment places: far longer than any run, so no hold the
/// workload confirms or voids expires first, yet a hold left pending by a failed request does
/// not reserve its wallet's money forever.
pub const HOLD_TIMEOUT_SECONDS: u32 = 600;

/// How one request of the workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `200` with status `APPLIED`: the write is durable and must show in the balance. For a
    /// payment: its hold was placed (`PENDING`) and then `CONFIRMED` or `VOIDED` as asked.
    Applied,
    /// `409 INSUFFICIENT_FUNDS` for a withdrawal, a transfer or a payment's hold: a legitimate
    /// refusal, the balances are unchanged.
    Rejected,
    /// `200` for a balance read.
    Read,
    /// `200` for a liveness check.
    Alive,
    /// `200` for a batch, with a result for each item that the API documents: what would have
    /// been [`Outcome::Applied`] or [`Outcome::Rejected`] for the item sent alone.
    Decided,
    /// Any other HTTP answer, 5xx included. For a write its effect is unknown until looked up;
    /// for a payment, the answer to whichever of its two requests went wrong.
    Other(u16),
    /// No complete answer within `--timeout`.
    Timeout,
    /// The connection failed or broke before a complete answer arrived.
    Transport,
}

impl Outcome {
    /// Whether the API behaved as documented for a well-formed request.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Outcome::Applied
                | Outcome::Rejected
                | Outcome::Read
                | Outcome::Alive
                | Outcome::Decided
        )
    }

    /// The HTTP status, if an answer arrived.
    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Applied | Outcome::Read | Outcome::Alive | Outcome::Decided => Some(200),
            Outcome::Rejected => Some(409),
            Outcome::Other(status) => Some(status),
            Outcome::Timeout | Outcome::Transport => None,
        }
    }
}

/// How one request of the workload ended, and with it each operation it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A request of one operation: its outcome is the operation's.
    One(Outcome),
    /// A batch: its own outcome, and each item's in item order, as the item would have ended
    /// sent alone. When the batch got no results (a timeout, a `503`, any other answer), every
    /// item ended as the batch did: its effect is unknown until looked up.
    Batch {
        outcome: Outcome,
        items: Vec<Outcome>,
    },
}

impl Answer {
    /// The request's own outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            Answer::One(outcome) | Answer::Batch { outcome, .. } => *outcome,
        }
    }

    /// How each operation of the request ended.
    pub fn items(&self) -> &[Outcome] {
        match self {
            Answer::One(outcome) => std::slice::from_ref(outcome),
            Answer::Batch { items, .. } => items,
        }
    }
}

impl From<Outcome> for Answer {
    fn from(outcome: Outcome) -> Self {
        Answer::One(outcome)
    }
}

/// An operation record (a history item) as the API returns it; unknown fields (such as
/// `createdAt`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationRecord {
    pub operation_id: Uuid,
    pub wallet_id: Uuid,
    pub operation_type: OperationType,
    pub amount: u64,
    pub status: OperationStatus,
    pub balance: i64,
    /// The wallet's balance minus its holds, after this item.
    pub available: i64,
    /// Only on a side of a transfer.
    pub transfer_id: Option<Uuid>,
    /// Only on a side of a transfer: the other wallet.
    pub counterparty_wallet_id: Option<Uuid>,
    /// Only on a hold and on its confirmation, release or expiry.
    pub hold_id: Option<Uuid>,
}

impl OperationRecord {
    /// The id the client chose for the write this item records. A transfer's incoming side
    /// and a hold's resolution have an `operationId` of the server's making, so they are
    /// known by `transferId` and `holdId`.
    pub fn client_id(&self) -> Uuid {
        self.transfer_id
            .or(self.hold_id)
            .unwrap_or(self.operation_id)
    }
}

/// `operationType` of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationType {
    Deposit,
    Withdraw,
    /// The source's side of a transfer.
    TransferOut,
    /// The destination's side of a transfer.
    TransferIn,
}

impl OperationType {
    /// The change an applied item of this type and amount makes to its wallet's balance. Wide
    /// integers, so that no sum of valid amounts can overflow.
    pub fn delta(self, amount: u64) -> i128 {
        match self {
            OperationType::Deposit | OperationType::TransferIn => i128::from(amount),
            OperationType::Withdraw | OperationType::TransferOut => -i128::from(amount),
        }
    }
}

/// `status` of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OperationStatus {
    Applied,
    Rejected,
    /// A hold, as placed; the item stays so when the hold is resolved.
    Pending,
    /// A hold's release by a void.
    Voided,
    /// A hold's release at its `expiresAt`.
    Expired,
}

impl fmt::Display for OperationStatus {
    /// As the API spells it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperationStatus::Applied => "APPLIED",
            OperationStatus::Rejected => "REJECTED",
            OperationStatus::Pending => "PENDING",
            OperationStatus::Voided => "VOIDED",
            OperationStatus::Expired => "EXPIRED",
        })
    }
}

/// A transfer record as `GET /api/v1/transfers/{id}` returns it; `reason` and `createdAt` are
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRecord {
    pub transfer_id: Uuid,
    pub from_wallet_id: Uuid,
    pub to_wallet_id: Uuid,
    pub amount: u64,
    pub status: OperationStatus,
    /// The source's balance and available amount right after the transfer.
    pub from_balance: i64,
    pub from_available: i64,
    /// The destination's balance and available amount right after the transfer.
    pub to_balance: i64,
    pub to_available: i64,
}

/// A hold record as `GET /api/v1/holds/{id}` returns it; `holdType` (which `toWalletId`
/// tells) and the dates are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRecord {
    pub hold_id: Uuid,
    pub wallet_id: Uuid,
    /// Only on the hold of a pending transfer: its destination, credited on confirmation.
    pub to_wallet_id: Option<Uuid>,
    /// The amount held.
    pub amount: u64,
    pub status: HoldStatus,
    /// Only once `CONFIRMED`.
    pub confirmed_amount: Option<u64>,
}

/// `status` of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HoldStatus {
    Pending,
    Confirmed,
    Voided,
    Expired,
}

/// A wallet's money as `GET /api/v1/wallets/{id}` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Funds {
    /// Posted: what deposits, withdrawals, transfers and confirmed holds left.
    pub balance: i64,
    /// Reserved by pending holds.
    pub held: i64,
    /// `balance - held`: what a new withdrawal, transfer or hold may take.
    pub available: i64,
}

/// One page of a wallet's history, newest first.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    pub items: Vec<OperationRecord>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WriteBody {
    wallet_id: Uuid,
    operation_type: &'static str,
    amount: u64,
    operation_id: Uuid,
    /// Sent only for a hold, so that plain writes stay as they always were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_seconds: Option<u32>,
}

/// The body of a confirmation of part of a hold.
#[derive(Serialize)]
struct ConfirmBody {
    amount: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransferBody {
    /// `TRANSFER` in a batch, which tells its items apart by their type; not sent on
    /// `POST /api/v1/transfers`, where every body is a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_type: Option<&'static str>,
    transfer_id: Uuid,
    from_wallet_id: Uuid,
    to_wallet_id: Uuid,
    amount: u64,
}

/// The body of a write: what its own endpoint takes, and so what an item of a batch holds.
#[derive(Serialize)]
#[serde(untagged)]
enum WriteRequest {
    /// For `POST /api/v1/wallet`.
    Operation(WriteBody),
    /// For `POST /api/v1/transfers`.
    Transfer(TransferBody),
}

#[derive(Serialize)]
struct BatchBody {
    /// Always `false`: each item is decided on its own, as if it had been sent alone.
    atomic: bool,
    items: Vec<WriteRequest>,
}

/// A decided batch: one result per item, in item order.
#[derive(Deserialize)]
struct BatchResults<'a> {
    #[serde(borrow)]
    results: Vec<ItemResult<'a>>,
}

/// One item's answer: the status and body its own endpoint would have answered.
#[derive(Deserialize)]
struct ItemResult<'a> {
    status: u16,
    #[serde(borrow)]
    body: &'a RawValue,
}

#[derive(Deserialize)]
struct StatusField<'a> {
    status: &'a str,
}

#[derive(Deserialize)]
struct ProblemCode<'a> {
    code: &'a str,
}

/// Client for the wallets of one run. Holds the wallet ids so that requests can name a wallet
/// by its index, and the URLs so that the hot path formats none but those of a payment's hold.
pub struct Api {
    http: Client,
    base: Url,
    write_url: Url,
    transfer_url: Url,
    holds_url: Url,
    batches_url: Url,
    live_url: Url,
    wallets: Vec<Uuid>,
    wallet_urls: Vec<Url>,
}

impl Api {
    /// One client for the whole run: keep-alive connections are reused across requests, and
    /// the pool keeps every idle connection so a closed loop of N clients settles on N of them.
    pub fn new(base: &Url, wallets: Vec<Uuid>, timeout: Duration) -> anyhow::Result<Self> {
        let http = Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            // Proxies from the environment, or redirects, would send requests somewhere other
            // than `--url`; a redirect is an unexpected answer here anyway.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        // `join` replaces the last path segment unless the path ends with a slash.
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let live_url = base
            .join("health/live")
            .context("building the liveness URL")?;
        let base = base.join("api/v1/").context("building the API URL")?;
        let write_url = base.join("wallet")?;
        let transfer_url = base.join("transfers")?;
        let holds_url = base.join("holds")?;
        let batches_url = base.join("batches")?;
        let wallet_urls = wallets
            .iter()
            .map(|id| base.join(&format!("wallets/{id}")))
            .collect::<Result<_, _>>()?;
        Ok(Api {
            http,
            base,
            write_url,
            transfer_url,
            holds_url,
            batches_url,
            live_url,
            wallets,
            wallet_urls,
        })
    }

    /// The wallets of this run, indexed as in [`Op`] and [`WriteKind`].
    pub fn wallets(&self) -> &[Uuid] {
        &self.wallets
    }

    /// Sends one request of the workload. Never fails: every ending is an [`Answer`].
    pub async fn execute(&self, op: &Op) -> Answer {
        match op {
            Op::Write(write) => self.submit(write).await.into(),
            Op::Read { wallet } => {
                let request = self.http.get(self.wallet_urls[*wallet as usize].clone());
                match fetch(request).await {
                    Ok((StatusCode::OK, _)) => Outcome::Read,
                    Ok((status, _)) => Outcome::Other(status.as_u16()),
                    Err(failure) => failure,
                }
                .into()
            }
            Op::Live => self.live().await.into(),
            Op::Batch(writes) => self.batch(writes).await,
        }
    }

    /// Asks whether the process answers: `GET /health/live`, no database work on the server.
    pub async fn live(&self) -> Outcome {
        match fetch(self.http.get(self.live_url.clone())).await {
            Ok((StatusCode::OK, _)) => Outcome::Alive,
            Ok((status, _)) => Outcome::Other(status.as_u16()),
            Err(failure) => failure,
        }
    }

    /// Submits a deposit or withdrawal with its operation id, a transfer with its transfer id,
    /// or a payment: its hold with its operation id, then, once the hold is placed, the
    /// confirmation or void of that hold.
    pub async fn submit(&self, write: &Write) -> Outcome {
        let request = match self.body(write) {
            body @ WriteRequest::Operation(_) => self.http.post(self.write_url.clone()).json(&body),
            body @ WriteRequest::Transfer(_) => {
                self.http.post(self.transfer_url.clone()).json(&body)
            }
        };
        let outcome = match fetch(request).await {
            Ok((status, body)) => classify_write(write.kind, status.as_u16(), &body),
            Err(failure) => failure,
        };
        match write.kind {
            WriteKind::Capture { settle, .. } if outcome == Outcome::Applied => {
                self.settle(write.id, settle).await
            }
            _ => outcome,
        }
    }

    /// The body of a write's own request: a deposit, withdrawal or hold with its operation id,
    /// a transfer with its transfer id.
    fn body(&self, write: &Write) -> WriteRequest {
        let operation = |wallet: u32, operation_type, pending: bool| {
            WriteRequest::Operation(WriteBody {
                wallet_id: self.wallets[wallet as usize],
                operation_type,
                amount: write.amount,
                operation_id: write.id,
                pending,
                timeout_seconds: pending.then_some(HOLD_TIMEOUT_SECONDS),
            })
        };
        match write.kind {
            WriteKind::Deposit { wallet } => operation(wallet, "DEPOSIT", false),
            WriteKind::Withdraw { wallet } => operation(wallet, "WITHDRAW", false),
            WriteKind::Capture { wallet, .. } => operation(wallet, "WITHDRAW", true),
            WriteKind::Transfer { from, to } => WriteRequest::Transfer(TransferBody {
                operation_type: None,
                transfer_id: write.id,
                from_wallet_id: self.wallets[from as usize],
                to_wallet_id: self.wallets[to as usize],
                amount: write.amount,
            }),
        }
    }

    /// A write as an item of a batch: the body of its own request, a transfer's with
    /// `"operationType": "TRANSFER"`.
    fn item(&self, write: &Write) -> WriteRequest {
        let mut body = self.body(write);
        if let WriteRequest::Transfer(transfer) = &mut body {
            transfer.operation_type = Some("TRANSFER");
        }
        body
    }

    /// Submits deposits, withdrawals and transfers as one batch that is not atomic, each item
    /// named by its own id. A payment's hold would be placed but never confirmed or voided:
    /// the command line keeps payments out of batches.
    async fn batch(&self, writes: &[Write]) -> Answer {
        let body = BatchBody {
            atomic: false,
            items: writes.iter().map(|write| self.item(write)).collect(),
        };
        let request = self.http.post(self.batches_url.clone()).json(&body);
        match fetch(request).await {
            Ok((status, body)) => classify_batch(writes, status.as_u16(), &body),
            Err(failure) => Answer::Batch {
                outcome: failure,
                items: vec![failure; writes.len()],
            },
        }
    }

    /// Confirms (in full or in part) or voids a placed hold as `settle` says.
    async fn settle(&self, hold: Uuid, settle: Settle) -> Outcome {
        let (action, amount, done) = match settle {
            Settle::Confirm => ("confirm", None, "CONFIRMED"),
            Settle::ConfirmPart(amount) => ("confirm", Some(amount), "CONFIRMED"),
            Settle::Void => ("void", None, "VOIDED"),
            // Nothing to send: the hold is left to expire, or to stay pending.
            Settle::Expired | Settle::Pending => return Outcome::Applied,
        };
        let mut request = self
            .http
            .post(with_segments(&self.holds_url, &[&hold.to_string(), action]));
        if let Some(amount) = amount {
            request = request.json(&ConfirmBody { amount });
        }
        match fetch(request).await {
            Ok((status, body)) => classify(status.as_u16(), &body, done, false),
            Err(failure) => failure,
        }
    }

    /// Creates a wallet with a chosen id (`201` expected).
    pub async fn create_wallet(&self, wallet: u32) -> anyhow::Result<()> {
        let id = self.wallets[wallet as usize];
        let request = self
            .http
            .post(self.base.join("wallets")?)
            .json(&serde_json::json!({ "walletId": id }));
        let (status, body) = self.call(request).await?;
        if status != StatusCode::CREATED {
            bail!("creating wallet {id}: {}", describe(status, &body));
        }
        Ok(())
    }

    /// Reads a wallet's balance, held and available amounts.
    pub async fn funds(&self, wallet: u32) -> anyhow::Result<Funds> {
        let url = self.wallet_urls[wallet as usize].clone();
        let (status, body) = self.call(self.http.get(url)).await?;
        if status != StatusCode::OK {
            bail!("reading the balance: {}", describe(status, &body));
        }
        serde_json::from_slice(&body).context("parsing the balance")
    }

    /// Looks up one operation of a wallet by id: `Some(record)` if the server knows it, `None`
    /// for `404 OPERATION_NOT_FOUND`.
    pub async fn operation(
        &self,
        wallet: u32,
        id: Uuid,
    ) -> anyhow::Result<Option<OperationRecord>> {
        let url = with_segments(
            &self.wallet_urls[wallet as usize],
            &["operations", &id.to_string()],
        );
        self.stored_record(url, "OPERATION_NOT_FOUND", "operation", id)
            .await
    }

    /// Looks up one transfer by id: `Some(record)` if the server knows it, `None` for
    /// `404 TRANSFER_NOT_FOUND`.
    pub async fn transfer(&self, id: Uuid) -> anyhow::Result<Option<TransferRecord>> {
        let url = with_segments(&self.transfer_url, &[&id.to_string()]);
        self.stored_record(url, "TRANSFER_NOT_FOUND", "transfer", id)
            .await
    }

    /// Looks up one hold by id: `Some(record)` if the server holds or held it, `None` for
    /// `404 HOLD_NOT_FOUND` (never placed, or refused).
    pub async fn hold(&self, id: Uuid) -> anyhow::Result<Option<HoldRecord>> {
        let url = with_segments(&self.holds_url, &[&id.to_string()]);
        self.stored_record(url, "HOLD_NOT_FOUND", "hold", id).await
    }

    /// Reads a record that may not exist: `None` for a `404` with the given problem code, which
    /// is how the server says it never stored that id.
    async fn stored_record<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        not_found: &str,
        what: &str,
        id: Uuid,
    ) -> anyhow::Result<Option<T>> {
        let (status, body) = self.call(self.http.get(url)).await?;
        match status {
            StatusCode::OK => {
                Ok(Some(serde_json::from_slice(&body).with_context(|| {
                    format!("parsing the record of {what} {id}")
                })?))
            }
            StatusCode::NOT_FOUND if problem_code(&body) == Some(not_found) => Ok(None),
            _ => bail!("looking up {what} {id}: {}", describe(status, &body)),
        }
    }

    /// Fetches one page of a wallet's history, newest first.
    pub async fn history_page(
        &self,
        wallet: u32,
        cursor: Option<&str>,
    ) -> anyhow::Result<HistoryPage> {
        let mut url = with_segments(&self.wallet_urls[wallet as usize], &["operations"]);
        url.query_pairs_mut().append_pair("limit", "500");
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        let (status, body) = self.call(self.http.get(url)).await?;
        if status != StatusCode::OK {
            bail!("reading the history: {}", describe(status, &body));
        }
        serde_json::from_slice(&body).context("parsing a history page")
    }

    /// A request outside the measured run, where any failure is simply an error.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(StatusCode, bytes::Bytes)> {
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.bytes().await?))
    }
}

/// `url` with path segments appended. Every URL here descends from a base that `join` accepted,
/// which a URL that cannot take a path would not have been.
fn with_segments(url: &Url, segments: &[&str]) -> Url {
    let mut url = url.clone();
    url.path_segments_mut()
        .expect("URLs under the API base have a path")
        .extend(segments);
    url
}

/// Sends a request and reads the whole body (so the connection can be reused), mapping
/// transport failures onto [`Outcome`].
async fn fetch(request: reqwest::RequestBuilder) -> Result<(StatusCode, bytes::Bytes), Outcome> {
    let transport = |error: reqwest::Error| {
        if error.is_timeout() {
            Outcome::Timeout
        } else {
            Outcome::Transport
        }
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    Ok((status, body))
}

/// Decides what a write's answer means. Only a `200` whose record says `APPLIED` (`PENDING`
/// for a payment's hold), or `409 INSUFFICIENT_FUNDS` for a withdrawal, a transfer or a hold,
/// settles the write; anything else (`BALANCE_LIMIT_EXCEEDED` included: the run's amounts
/// never reach the limit) leaves its effect unknown.
pub fn classify_write(kind: WriteKind, status: u16, body: &[u8]) -> Outcome {
    let done = match kind {
        WriteKind::Capture { .. } => "PENDING",
        _ => "APPLIED",
    };
    classify(status, body, done, kind.debits())
}

/// Decides what a batch's answer means for each of its `writes`: a `200` with one result per
/// item settles each item as [`classify_write`] would settle the same answer to the item sent
/// alone, and the batch is [`Outcome::Decided`] when every item's answer is one the API
/// documents (`Other(200)` otherwise). Any other answer leaves every item's effect unknown.
fn classify_batch(writes: &[Write], status: u16, body: &[u8]) -> Answer {
    let results = (status == 200)
        .then(|| serde_json::from_slice::<BatchResults>(body).ok())
        .flatten()
        .map(|batch| batch.results)
        .filter(|results| results.len() == writes.len());
    let Some(results) = results else {
        return Answer::Batch {
            outcome: Outcome::Other(status),
            items: vec![Outcome::Other(status); writes.len()],
        };
    };
    let items: Vec<Outcome> = writes
        .iter()
        .zip(&results)
        .map(|(write, result)| {
            classify_write(write.kind, result.status, result.body.get().as_bytes())
        })
        .collect();
    let outcome = if items.iter().all(|item| item.is_ok()) {
        Outcome::Decided
    } else {
        Outcome::Other(status)
    };
    Answer::Batch { outcome, items }
}

/// `Applied` for a `200` whose record has the status `done`; `Rejected` for
/// `409 INSUFFICIENT_FUNDS` where a refusal is legitimate; the status otherwise.
fn classify(status: u16, body: &[u8], done: &str, refusable: bool) -> Outcome {
    match status {
        200 => match serde_json::from_slice::<StatusField>(body) {
            Ok(record) if record.status == done => Outcome::Applied,
            _ => Outcome::Other(status),
        },
        409 if refusable && problem_code(body) == Some("INSUFFICIENT_FUNDS") => Outcome::Rejected,
        _ => Outcome::Other(status),
    }
}

/// The `code` of a problem+json body, if it has one.
fn problem_code(body: &[u8]) -> Option<&str> {
    serde_json::from_slice::<ProblemCode>(body)
        .ok()
        .map(|p| p.code)
}

/// A short description of an unexpected answer for error messages.
fn describe(status: StatusCode, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(&body[..body.len().min(300)]);
    format!("unexpected {status}: {body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLIED: &[u8] = br#"{"operationId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a10","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","operationType":"DEPOSIT","amount":5,"status":"APPLIED","balance":105,"available":105,"createdAt":"2025-01-01T00:00:00Z"}"#;
    const NO_FUNDS: &[u8] =
        br#"{"type":"about:blank","title":"Conflict","status":409,"code":"INSUFFICIENT_FUNDS"}"#;
    const TRANSFER_APPLIED: &[u8] = br#"{"transferId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a11","fromWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","toWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e","amount":5,"status":"APPLIED","fromBalance":95,"fromAvailable":95,"toBalance":5,"toAvailable":5,"createdAt":"2025-01-01T00:00:00Z"}"#;
    const TRANSFER_IN: &[u8] = br#"{"operationId":"1d0c7c1e-2a8f-5a55-9a4e-0d7c3c1b2a12","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e","operationType":"TRANSFER_IN","transferId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a11","counterpartyWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","amount":5,"status":"APPLIED","balance":5,"available":5,"createdAt":"2025-01-01T00:00:00Z"}"#;
    const HOLD_PLACED: &[u8] = br#"{"operationId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a13","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","operationType":"WITHDRAW","amount":40,"status":"PENDING","balance":100,"available":60,"holdId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a13","expiresAt":"2025-01-01T00:10:00Z","createdAt":"2025-01-01T00:00:00Z"}"#;
    const HOLD_CONFIRMED: &[u8] = br#"{"holdId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a13","holdType":"WITHDRAW","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","amount":40,"confirmedAmount":25,"status":"CONFIRMED","expiresAt":"2025-01-01T00:10:00Z","createdAt":"2025-01-01T00:00:00Z","resolvedAt":"2025-01-01T00:00:01Z"}"#;
    const HOLD_VOIDED: &[u8] = br#"{"holdId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a13","holdType":"WITHDRAW","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","amount":40,"status":"VOIDED","createdAt":"2025-01-01T00:00:00Z","resolvedAt":"2025-01-01T00:00:01Z"}"#;
    const HOLD_NOT_PENDING: &[u8] = br#"{"type":"about:blank","status":409,"code":"HOLD_NOT_PENDING","holdId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a13"}"#;
    const DEPOSIT: WriteKind = WriteKind::Deposit { wallet: 0 };
    const WITHDRAW: WriteKind = WriteKind::Withdraw { wallet: 0 };
    const TRANSFER: WriteKind = WriteKind::Transfer { from: 0, to: 1 };
    const CAPTURE: WriteKind = WriteKind::Capture {
        wallet: 0,
        settle: Settle::Confirm,
    };

    #[test]
    fn applied_record_settles_a_write() {
        assert_eq!(classify_write(DEPOSIT, 200, APPLIED), Outcome::Applied);
    }

    #[test]
    fn insufficient_funds_is_a_legitimate_rejection_of_a_withdrawal() {
        assert_eq!(classify_write(WITHDRAW, 409, NO_FUNDS), Outcome::Rejected);
    }

    #[test]
    fn insufficient_funds_on_a_deposit_is_unexpected() {
        assert_eq!(classify_write(DEPOSIT, 409, NO_FUNDS), Outcome::Other(409));
    }

    #[test]
    fn applied_transfer_record_settles_a_transfer() {
        assert_eq!(
            classify_write(TRANSFER, 200, TRANSFER_APPLIED),
            Outcome::Applied
        );
    }

    #[test]
    fn insufficient_funds_is_a_legitimate_rejection_of_a_transfer() {
        assert_eq!(classify_write(TRANSFER, 409, NO_FUNDS), Outcome::Rejected);
    }

    #[test]
    fn other_refusals_of_a_transfer_leave_it_unsettled() {
        let problem = |status, code: &str| {
            format!(r#"{{"type":"about:blank","status":{status},"code":"{code}"}}"#)
        };
        for (status, code) in [
            (409, "BALANCE_LIMIT_EXCEEDED"),
            (404, "WALLET_NOT_FOUND"),
            (400, "SAME_WALLET"),
            (422, "IDEMPOTENCY_KEY_REUSED"),
            (503, "SERVICE_UNAVAILABLE"),
        ] {
            let body = problem(status, code);
            assert_eq!(
                classify_write(TRANSFER, status, body.as_bytes()),
                Outcome::Other(status),
                "{code}"
            );
        }
    }

    #[test]
    fn rejected_transfer_record_on_a_200_is_unexpected() {
        let rejected = br#"{"status":"REJECTED","reason":"INSUFFICIENT_FUNDS"}"#;
        assert_eq!(classify_write(TRANSFER, 200, rejected), Outcome::Other(200));
    }

    #[test]
    fn ok_status_without_an_applied_record_is_unexpected() {
        let rejected = br#"{"status":"REJECTED"}"#;
        assert_eq!(classify_write(WITHDRAW, 200, rejected), Outcome::Other(200));
        assert_eq!(
            classify_write(DEPOSIT, 200, b"not json"),
            Outcome::Other(200)
        );
    }

    #[test]
    fn server_errors_leave_the_write_unsettled() {
        let outcome = classify_write(DEPOSIT, 503, b"{}");
        assert_eq!(outcome, Outcome::Other(503));
        assert!(!outcome.is_ok());
        assert_eq!(outcome.status(), Some(503));
    }

    #[test]
    fn placed_hold_lets_a_payment_go_on_to_its_confirmation() {
        assert_eq!(classify_write(CAPTURE, 200, HOLD_PLACED), Outcome::Applied);
    }

    #[test]
    fn payment_whose_hold_was_applied_at_once_is_unexpected() {
        assert_eq!(classify_write(CAPTURE, 200, APPLIED), Outcome::Other(200));
    }

    #[test]
    fn insufficient_funds_is_a_legitimate_rejection_of_a_hold() {
        assert_eq!(classify_write(CAPTURE, 409, NO_FUNDS), Outcome::Rejected);
    }

    #[test]
    fn hold_in_the_state_asked_for_completes_the_payment() {
        assert_eq!(
            classify(200, HOLD_CONFIRMED, "CONFIRMED", false),
            Outcome::Applied
        );
        assert_eq!(
            classify(200, HOLD_VOIDED, "VOIDED", false),
            Outcome::Applied
        );
    }

    #[test]
    fn hold_in_another_state_or_refused_leaves_the_payment_unsettled() {
        assert_eq!(
            classify(200, HOLD_VOIDED, "CONFIRMED", false),
            Outcome::Other(200)
        );
        assert_eq!(
            classify(409, HOLD_NOT_PENDING, "CONFIRMED", false),
            Outcome::Other(409)
        );
        // A confirmation takes money already reserved: insufficient funds is no answer to it.
        assert_eq!(
            classify(409, NO_FUNDS, "CONFIRMED", false),
            Outcome::Other(409)
        );
    }

    #[test]
    fn only_a_hold_is_sent_pending_with_a_timeout() {
        let body = |pending| {
            serde_json::to_value(WriteBody {
                wallet_id: Uuid::nil(),
                operation_type: "WITHDRAW",
                amount: 5,
                operation_id: Uuid::nil(),
                pending,
                timeout_seconds: pending.then_some(HOLD_TIMEOUT_SECONDS),
            })
            .unwrap()
        };
        let plain = body(false);
        assert!(plain.get("pending").is_none() && plain.get("timeoutSeconds").is_none());
        let hold = body(true);
        assert_eq!(hold["pending"], true);
        assert_eq!(hold["timeoutSeconds"], 600);
        assert_eq!(hold["operationType"], "WITHDRAW");
        assert_eq!(
            serde_json::to_value(ConfirmBody { amount: 7 }).unwrap(),
            serde_json::json!({ "amount": 7 })
        );
    }

    #[test]
    fn hold_record_parses_from_the_documented_shape() {
        let confirmed: HoldRecord = serde_json::from_slice(HOLD_CONFIRMED).unwrap();
        assert_eq!(confirmed.status, HoldStatus::Confirmed);
        assert_eq!(
            (confirmed.amount, confirmed.confirmed_amount),
            (40, Some(25))
        );
        assert_eq!(confirmed.to_wallet_id, None);
        let voided: HoldRecord = serde_json::from_slice(HOLD_VOIDED).unwrap();
        assert_eq!(voided.status, HoldStatus::Voided);
        assert_eq!(voided.confirmed_amount, None);
    }

    #[test]
    fn wallet_shows_balance_held_and_available() {
        let funds: Funds = serde_json::from_slice(
            br#"{"walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","balance":100,"held":40,"available":60,"createdAt":"2025-01-01T00:00:00Z","updatedAt":"2025-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            funds,
            Funds {
                balance: 100,
                held: 40,
                available: 60
            }
        );
    }

    #[test]
    fn hold_and_its_resolution_are_known_by_the_hold_id() {
        let hold: OperationRecord = serde_json::from_slice(HOLD_PLACED).unwrap();
        assert_eq!(hold.status, OperationStatus::Pending);
        assert_eq!((hold.balance, hold.available), (100, 60));
        let resolution = OperationRecord {
            operation_id: Uuid::from_u128(1),
            status: OperationStatus::Applied,
            ..hold.clone()
        };
        assert_eq!(resolution.client_id(), hold.operation_id);
        assert_eq!(hold.client_id(), hold.operation_id);
    }

    #[test]
    fn operation_record_parses_from_the_documented_shape() {
        let record: OperationRecord = serde_json::from_slice(APPLIED).unwrap();
        assert_eq!(record.operation_type, OperationType::Deposit);
        assert_eq!(record.status, OperationStatus::Applied);
        assert_eq!(record.amount, 5);
        assert_eq!(record.balance, 105);
        assert_eq!(record.transfer_id, None);
        assert_eq!(record.client_id(), record.operation_id);
    }

    #[test]
    fn incoming_side_of_a_transfer_is_known_by_its_transfer_id() {
        let record: OperationRecord = serde_json::from_slice(TRANSFER_IN).unwrap();
        assert_eq!(record.operation_type, OperationType::TransferIn);
        let transfer_id = Uuid::parse_str("6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a11").unwrap();
        assert_ne!(record.operation_id, transfer_id);
        assert_eq!(record.client_id(), transfer_id);
        assert_eq!(
            record.counterparty_wallet_id,
            Some(Uuid::parse_str("0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d").unwrap())
        );
    }

    #[test]
    fn operation_types_move_the_balance_in_their_direction() {
        assert_eq!(OperationType::Deposit.delta(7), 7);
        assert_eq!(OperationType::TransferIn.delta(7), 7);
        assert_eq!(OperationType::Withdraw.delta(7), -7);
        assert_eq!(OperationType::TransferOut.delta(7), -7);
    }

    #[test]
    fn transfer_record_parses_from_the_documented_shape() {
        let record: TransferRecord = serde_json::from_slice(TRANSFER_APPLIED).unwrap();
        assert_eq!(record.status, OperationStatus::Applied);
        assert_eq!(record.amount, 5);
        let rejected: TransferRecord = serde_json::from_slice(
            br#"{"transferId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a11","fromWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","toWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e","amount":5,"status":"REJECTED","reason":"INSUFFICIENT_FUNDS","fromBalance":1,"fromAvailable":1,"toBalance":0,"toAvailable":0,"createdAt":"2025-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(rejected.status, OperationStatus::Rejected);
        assert_eq!((rejected.from_balance, rejected.to_available), (1, 0));
    }

    /// An API client for two wallets, 1 and 2, that sends nothing here.
    fn two_wallets() -> Api {
        let base = Url::parse("http://127.0.0.1:18080").unwrap();
        let wallets = vec![Uuid::from_u128(1), Uuid::from_u128(2)];
        Api::new(&base, wallets, Duration::from_secs(1)).unwrap()
    }

    fn sent(kind: WriteKind) -> Write {
        Write {
            kind,
            amount: 5,
            id: Uuid::from_u128(9),
        }
    }

    #[test]
    fn single_write_bodies_are_as_they_always_were() {
        let api = two_wallets();
        let json = |write| serde_json::to_string(&api.body(&write)).unwrap();
        assert_eq!(
            json(sent(DEPOSIT)),
            r#"{"walletId":"00000000-0000-0000-0000-000000000001","operationType":"DEPOSIT","amount":5,"operationId":"00000000-0000-0000-0000-000000000009"}"#
        );
        assert_eq!(
            json(sent(TRANSFER)),
            r#"{"transferId":"00000000-0000-0000-0000-000000000009","fromWalletId":"00000000-0000-0000-0000-000000000001","toWalletId":"00000000-0000-0000-0000-000000000002","amount":5}"#
        );
    }

    #[test]
    fn batch_items_are_the_single_bodies_with_transfers_typed() {
        let api = two_wallets();
        let value = |body: WriteRequest| serde_json::to_value(body).unwrap();
        for kind in [DEPOSIT, WITHDRAW] {
            assert_eq!(value(api.item(&sent(kind))), value(api.body(&sent(kind))));
        }
        let mut transfer = value(api.body(&sent(TRANSFER)));
        transfer["operationType"] = "TRANSFER".into();
        assert_eq!(value(api.item(&sent(TRANSFER))), transfer);
        let batch = BatchBody {
            atomic: false,
            items: vec![api.item(&sent(WITHDRAW))],
        };
        let batch = serde_json::to_value(batch).unwrap();
        assert_eq!(batch["atomic"], false);
        assert_eq!(batch["items"][0]["operationType"], "WITHDRAW");
        assert_eq!(
            batch["items"][0]["operationId"],
            Uuid::from_u128(9).to_string()
        );
    }

    /// A batch's answer holding `results`, each a `(status, body)`.
    fn results(results: &[(u16, &[u8])]) -> Vec<u8> {
        let results: Vec<_> = results
            .iter()
            .map(|&(status, body)| {
                let body: serde_json::Value = serde_json::from_slice(body).unwrap();
                serde_json::json!({ "status": status, "body": body, "replayed": false })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "results": results })).unwrap()
    }

    #[test]
    fn each_item_of_a_batch_is_settled_as_if_sent_alone() {
        let writes = [
            sent(DEPOSIT),
            sent(WITHDRAW),
            sent(TRANSFER),
            sent(TRANSFER),
        ];
        let body = results(&[
            (200, APPLIED),
            (409, NO_FUNDS),
            (200, TRANSFER_APPLIED),
            (409, NO_FUNDS),
        ]);
        let answer = classify_batch(&writes, 200, &body);
        assert_eq!(answer.outcome(), Outcome::Decided);
        assert_eq!(
            answer.items(),
            [
                Outcome::Applied,
                Outcome::Rejected,
                Outcome::Applied,
                Outcome::Rejected
            ]
        );
        assert!(answer.outcome().is_ok());
        assert_eq!(answer.outcome().status(), Some(200));
    }

    #[test]
    fn batch_with_an_item_answered_otherwise_is_unexpected() {
        let writes = [sent(DEPOSIT), sent(DEPOSIT)];
        let problem = br#"{"type":"about:blank","status":500,"code":"INTERNAL_ERROR"}"#;
        let answer = classify_batch(&writes, 200, &results(&[(500, problem), (409, NO_FUNDS)]));
        assert_eq!(answer.outcome(), Outcome::Other(200));
        // A deposit refused for insufficient funds is as unexpected in a batch as alone.
        assert_eq!(answer.items(), [Outcome::Other(500), Outcome::Other(409)]);
    }

    #[test]
    fn batch_without_a_result_per_item_leaves_every_item_unsettled() {
        let writes = [sent(DEPOSIT), sent(WITHDRAW), sent(TRANSFER)];
        let unavailable = br#"{"type":"about:blank","status":503,"code":"SERVICE_UNAVAILABLE"}"#;
        let short = results(&[(200, APPLIED), (409, NO_FUNDS)]);
        for (status, body) in [
            (503, unavailable.as_slice()),
            (200, short.as_slice()),
            (200, b"not json"),
            (400, NO_FUNDS),
        ] {
            let answer = classify_batch(&writes, status, body);
            assert_eq!(
                answer,
                Answer::Batch {
                    outcome: Outcome::Other(status),
                    items: vec![Outcome::Other(status); 3]
                }
            );
        }
    }

    #[test]
    fn a_single_request_is_its_own_only_item() {
        let answer = Answer::from(Outcome::Rejected);
        assert_eq!(answer.outcome(), Outcome::Rejected);
        assert_eq!(answer.items(), [Outcome::Rejected]);
    }

    #[test]
    fn urls_keep_a_base_path_prefix() {
        let base = Url::parse("http://127.0.0.1:18080/gateway").unwrap();
        let api = Api::new(&base, vec![], Duration::from_secs(1)).unwrap();
        assert_eq!(
            api.write_url.as_str(),
            "http://127.0.0.1:18080/gateway/api/v1/wallet"
        );
        assert_eq!(
            api.transfer_url.as_str(),
            "http://127.0.0.1:18080/gateway/api/v1/transfers"
        );
        assert_eq!(
            with_segments(&api.holds_url, &["h1", "confirm"]).as_str(),
            "http://127.0.0.1:18080/gateway/api/v1/holds/h1/confirm"
        );
        assert_eq!(
            api.batches_url.as_str(),
            "http://127.0.0.1:18080/gateway/api/v1/batches"
        );
        assert_eq!(
            api.live_url.as_str(),
            "http://127.0.0.1:18080/gateway/health/live"
        );
    }

    #[test]
    fn urls_are_built_under_api_v1_even_without_a_trailing_slash() {
        let base = Url::parse("http://127.0.0.1:18080").unwrap();
        let api = Api::new(&base, vec![Uuid::nil()], Duration::from_secs(1)).unwrap();
        assert_eq!(
            api.write_url.as_str(),
            "http://127.0.0.1:18080/api/v1/wallet"
        );
        assert_eq!(
            api.wallet_urls[0].as_str(),
            "http://127.0.0.1:18080/api/v1/wallets/00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(api.live_url.as_str(), "http://127.0.0.1:18080/health/live");
    }
}
