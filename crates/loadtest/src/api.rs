//! The wallet API as the load generator sees it: one shared keep-alive client, URLs built once,
//! and every answer classified into the few outcomes the report and the verifier care about.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, StatusCode, Url};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::workload::{Op, Write, WriteKind};

/// How one request of the workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `200` with status `APPLIED`: the write is durable and must show in the balance.
    Applied,
    /// `409 INSUFFICIENT_FUNDS` for a withdrawal or a transfer: a legitimate refusal, the
    /// balances are unchanged.
    Rejected,
    /// `200` for a balance read.
    Read,
    /// `200` for a liveness check.
    Alive,
    /// Any other HTTP answer, 5xx included. For a write its effect is unknown until looked up.
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
            Outcome::Applied | Outcome::Rejected | Outcome::Read | Outcome::Alive
        )
    }

    /// The HTTP status, if an answer arrived.
    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Applied | Outcome::Read | Outcome::Alive => Some(200),
            Outcome::Rejected => Some(409),
            Outcome::Other(status) => Some(status),
            Outcome::Timeout | Outcome::Transport => None,
        }
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
    /// Only on a side of a transfer.
    pub transfer_id: Option<Uuid>,
    /// Only on a side of a transfer: the other wallet.
    pub counterparty_wallet_id: Option<Uuid>,
}

impl OperationRecord {
    /// The id the client chose for the write this item records. A transfer's incoming side
    /// has an `operationId` of the server's making, so both sides are known by `transferId`.
    pub fn client_id(&self) -> Uuid {
        self.transfer_id.unwrap_or(self.operation_id)
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
}

/// A transfer record as `GET /api/v1/transfers/{id}` returns it; balances, `reason` and
/// `createdAt` are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRecord {
    pub transfer_id: Uuid,
    pub from_wallet_id: Uuid,
    pub to_wallet_id: Uuid,
    pub amount: u64,
    pub status: OperationStatus,
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
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransferBody {
    transfer_id: Uuid,
    from_wallet_id: Uuid,
    to_wallet_id: Uuid,
    amount: u64,
}

#[derive(Deserialize)]
struct StatusField<'a> {
    status: &'a str,
}

#[derive(Deserialize)]
struct ProblemCode<'a> {
    code: &'a str,
}

#[derive(Deserialize)]
struct Balance {
    balance: i64,
}

/// Client for the wallets of one run. Holds the wallet ids so that requests can name a wallet
/// by its index, and the URLs so that the hot path never formats or parses one.
pub struct Api {
    http: Client,
    base: Url,
    write_url: Url,
    transfer_url: Url,
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
        let wallet_urls = wallets
            .iter()
            .map(|id| base.join(&format!("wallets/{id}")))
            .collect::<Result<_, _>>()?;
        Ok(Api {
            http,
            base,
            write_url,
            transfer_url,
            live_url,
            wallets,
            wallet_urls,
        })
    }

    /// The wallets of this run, indexed as in [`Op`] and [`WriteKind`].
    pub fn wallets(&self) -> &[Uuid] {
        &self.wallets
    }

    /// Sends one request of the workload. Never fails: every ending is an [`Outcome`].
    pub async fn execute(&self, op: &Op) -> Outcome {
        match op {
            Op::Write(write) => self.submit(write).await,
            Op::Read { wallet } => {
                let request = self.http.get(self.wallet_urls[*wallet as usize].clone());
                match fetch(request).await {
                    Ok((StatusCode::OK, _)) => Outcome::Read,
                    Ok((status, _)) => Outcome::Other(status.as_u16()),
                    Err(failure) => failure,
                }
            }
            Op::Live => self.live().await,
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

    /// Submits a deposit or withdrawal with its operation id, or a transfer with its transfer
    /// id.
    pub async fn submit(&self, write: &Write) -> Outcome {
        let operation = |wallet: u32, operation_type| {
            self.http.post(self.write_url.clone()).json(&WriteBody {
                wallet_id: self.wallets[wallet as usize],
                operation_type,
                amount: write.amount,
                operation_id: write.id,
            })
        };
        let request = match write.kind {
            WriteKind::Deposit { wallet } => operation(wallet, "DEPOSIT"),
            WriteKind::Withdraw { wallet } => operation(wallet, "WITHDRAW"),
            WriteKind::Transfer { from, to } => {
                self.http
                    .post(self.transfer_url.clone())
                    .json(&TransferBody {
                        transfer_id: write.id,
                        from_wallet_id: self.wallets[from as usize],
                        to_wallet_id: self.wallets[to as usize],
                        amount: write.amount,
                    })
            }
        };
        match fetch(request).await {
            Ok((status, body)) => classify_write(write.kind, status.as_u16(), &body),
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

    /// Reads a wallet's balance.
    pub async fn balance(&self, wallet: u32) -> anyhow::Result<i64> {
        let url = self.wallet_urls[wallet as usize].clone();
        let (status, body) = self.call(self.http.get(url)).await?;
        if status != StatusCode::OK {
            bail!("reading the balance: {}", describe(status, &body));
        }
        Ok(serde_json::from_slice::<Balance>(&body)
            .context("parsing the balance")?
            .balance)
    }

    /// Looks up one operation of a wallet by id: `Some(record)` if the server knows it, `None`
    /// for `404 OPERATION_NOT_FOUND`.
    pub async fn operation(
        &self,
        wallet: u32,
        id: Uuid,
    ) -> anyhow::Result<Option<OperationRecord>> {
        let mut url = self.wallet_urls[wallet as usize].clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("base URL cannot have a path"))?
            .push("operations")
            .push(&id.to_string());
        self.stored_record(url, "OPERATION_NOT_FOUND", "operation", id)
            .await
    }

    /// Looks up one transfer by id: `Some(record)` if the server knows it, `None` for
    /// `404 TRANSFER_NOT_FOUND`.
    pub async fn transfer(&self, id: Uuid) -> anyhow::Result<Option<TransferRecord>> {
        let mut url = self.transfer_url.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("base URL cannot have a path"))?
            .push(&id.to_string());
        self.stored_record(url, "TRANSFER_NOT_FOUND", "transfer", id)
            .await
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
        let mut url = self.wallet_urls[wallet as usize].clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("base URL cannot have a path"))?
            .push("operations");
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

/// Decides what a write's answer means. Only a `200` whose record says `APPLIED`, or
/// `409 INSUFFICIENT_FUNDS` for a withdrawal or a transfer, settles the write; anything else
/// (`BALANCE_LIMIT_EXCEEDED` included: the run's amounts never reach the limit) leaves its
/// effect unknown.
pub fn classify_write(kind: WriteKind, status: u16, body: &[u8]) -> Outcome {
    match status {
        200 => match serde_json::from_slice::<StatusField>(body) {
            Ok(record) if record.status == "APPLIED" => Outcome::Applied,
            _ => Outcome::Other(status),
        },
        409 if kind.debits() && problem_code(body) == Some("INSUFFICIENT_FUNDS") => {
            Outcome::Rejected
        }
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

    const APPLIED: &[u8] = br#"{"operationId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a10","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","operationType":"DEPOSIT","amount":5,"status":"APPLIED","balance":105,"createdAt":"2025-01-01T00:00:00Z"}"#;
    const NO_FUNDS: &[u8] =
        br#"{"type":"about:blank","title":"Conflict","status":409,"code":"INSUFFICIENT_FUNDS"}"#;
    const TRANSFER_APPLIED: &[u8] = br#"{"transferId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a11","fromWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","toWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e","amount":5,"status":"APPLIED","fromBalance":95,"toBalance":5,"createdAt":"2025-01-01T00:00:00Z"}"#;
    const TRANSFER_IN: &[u8] = br#"{"operationId":"1d0c7c1e-2a8f-5a55-9a4e-0d7c3c1b2a12","walletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e","operationType":"TRANSFER_IN","transferId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a11","counterpartyWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","amount":5,"status":"APPLIED","balance":5,"createdAt":"2025-01-01T00:00:00Z"}"#;
    const DEPOSIT: WriteKind = WriteKind::Deposit { wallet: 0 };
    const WITHDRAW: WriteKind = WriteKind::Withdraw { wallet: 0 };
    const TRANSFER: WriteKind = WriteKind::Transfer { from: 0, to: 1 };

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
            br#"{"transferId":"6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a11","fromWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d","toWalletId":"0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4e","amount":5,"status":"REJECTED","reason":"INSUFFICIENT_FUNDS","fromBalance":1,"toBalance":0,"createdAt":"2025-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(rejected.status, OperationStatus::Rejected);
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
