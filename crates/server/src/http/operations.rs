//! Money movements (`POST /api/v1/wallet`) and their history.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{JsonBody, parse_id};
use super::openapi::{EXAMPLE_OPERATION, EXAMPLE_WALLET, problems};
use super::writes::{
    Answer, KeyHeader, outcome_of, parse_amount, parse_pending, request_id, submit as submit_write,
};
use crate::domain::{
    IdempotencyKey, OperationId, OperationKind, OperationRecord, OperationRequest, OperationStatus,
    RejectReason, WalletId,
};
use crate::store::reads;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Default and largest page of history.
const DEFAULT_PAGE: u32 = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(history))
        .routes(routes!(one))
}

/// What a client may ask `POST /api/v1/wallet` for.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = SubmitOperationType)]
pub(super) enum SubmitType {
    Deposit,
    Withdraw,
}

impl From<SubmitType> for OperationKind {
    fn from(kind: SubmitType) -> Self {
        match kind {
            SubmitType::Deposit => Self::Deposit,
            SubmitType::Withdraw => Self::Withdraw,
        }
    }
}

/// What a history entry did to its wallet: a deposit, a withdrawal, or one side of a
/// transfer (`TRANSFER_OUT` on the source, `TRANSFER_IN` on the destination).
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum OperationType {
    Deposit,
    Withdraw,
    TransferOut,
    TransferIn,
}

impl From<OperationKind> for OperationType {
    fn from(kind: OperationKind) -> Self {
        match kind {
            OperationKind::Deposit => Self::Deposit,
            OperationKind::Withdraw => Self::Withdraw,
            OperationKind::TransferOut => Self::TransferOut,
            OperationKind::TransferIn => Self::TransferIn,
        }
    }
}

/// `APPLIED`: the balance changed (for an entry with a `holdId`, the hold was confirmed).
/// `REJECTED`: it did not, and `reason` says why; a retry gets the same rejection.
/// `PENDING`: the amount is held, see the hold. `VOIDED` / `EXPIRED`: an entry that released
/// a hold.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = OperationStatus)]
pub(super) enum Status {
    Applied,
    Rejected,
    Pending,
    Voided,
    Expired,
}

/// Why an operation or a transfer was rejected.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = RejectReason)]
pub(super) enum Reason {
    InsufficientFunds,
    BalanceLimitExceeded,
}

impl Status {
    /// The status and reason fields of a record.
    pub(super) fn of(status: OperationStatus) -> (Self, Option<Reason>) {
        match status {
            OperationStatus::Applied => (Self::Applied, None),
            OperationStatus::Rejected(RejectReason::InsufficientFunds) => {
                (Self::Rejected, Some(Reason::InsufficientFunds))
            }
            OperationStatus::Rejected(RejectReason::BalanceLimitExceeded) => {
                (Self::Rejected, Some(Reason::BalanceLimitExceeded))
            }
            OperationStatus::Pending => (Self::Pending, None),
            OperationStatus::Voided => (Self::Voided, None),
            OperationStatus::Expired => (Self::Expired, None),
        }
    }
}

/// One deposit or withdrawal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SubmitOperation {
    /// A deposit to a wallet that does not exist creates it.
    #[schema(value_type = Uuid, example = json!(EXAMPLE_WALLET))]
    wallet_id: WalletId,
    operation_type: SubmitType,
    /// Minor units.
    #[schema(value_type = u64, minimum = 1, maximum = 9_007_199_254_740_991_u64, example = 1000)]
    amount: Box<RawValue>,
    /// Names the operation so that a retry applies it at most once. Not together with an
    /// `Idempotency-Key` header. A time-ordered UUID (version 7) costs the database less
    /// than a random one.
    #[schema(value_type = Option<Uuid>, example = json!(EXAMPLE_OPERATION))]
    operation_id: Option<OperationId>,
    /// `true` holds the amount of a `WITHDRAW` instead of taking it: a hold, named by the
    /// operation's id, to confirm or void later.
    #[schema(default = false)]
    pending: Option<bool>,
    /// A pending withdrawal expires (its amount is released) this many seconds after it is
    /// placed; without it, it never expires.
    #[schema(minimum = 1, maximum = 4_294_967_295_u64, example = 600)]
    timeout_seconds: Option<u64>,
}

/// An operation record, as every endpoint reports it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Operation)]
struct OperationJson {
    #[schema(example = json!(EXAMPLE_OPERATION))]
    operation_id: Uuid,
    #[schema(example = json!(EXAMPLE_WALLET))]
    wallet_id: Uuid,
    operation_type: OperationType,
    #[schema(example = 1000, minimum = 1, maximum = 9_007_199_254_740_991_u64)]
    amount: u64,
    status: Status,
    /// Present when `status` is `REJECTED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
    /// The wallet's balance right after this operation (unchanged when rejected or pending).
    #[schema(example = 1000, maximum = 9_007_199_254_740_991_u64)]
    balance: u64,
    /// The part of that balance no hold reserved right after this operation.
    #[schema(example = 1000, maximum = 9_007_199_254_740_991_u64)]
    available: u64,
    #[schema(example = "2026-01-01T00:00:00Z")]
    created_at: DateTime<Utc>,
    /// The transfer this entry is a side of (`TRANSFER_OUT`, `TRANSFER_IN` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_id: Option<Uuid>,
    /// The wallet on the transfer's other side (`TRANSFER_OUT`, `TRANSFER_IN` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    counterparty_wallet_id: Option<Uuid>,
    /// The hold this entry placed (then it is the entry's own id) or confirmed, voided or
    /// expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_id: Option<Uuid>,
    /// When the hold this entry placed expires; absent when it never does.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
}

impl From<&OperationRecord> for OperationJson {
    fn from(record: &OperationRecord) -> Self {
        let (status, reason) = Status::of(record.status);
        Self {
            operation_id: record.id.into(),
            wallet_id: record.wallet_id.into(),
            operation_type: record.kind.into(),
            amount: record.amount.get(),
            status,
            reason,
            balance: record.balance_after.get(),
            available: record.available_after.get(),
            created_at: record.created_at,
            transfer_id: record.transfer.map(|leg| leg.transfer_id.into()),
            counterparty_wallet_id: record.transfer.map(|leg| leg.counterparty.into()),
            hold_id: record.hold_id.map(Uuid::from),
            expires_at: record.expires_at,
        }
    }
}

problems!(SubmitProblems: InvalidRequest, InvalidAmount, WalletNotFound, InsufficientFunds,
    BalanceLimitExceeded, PayloadTooLarge, UnsupportedMediaType, IdempotencyKeyReused,
    ServiceUnavailable, Unauthorized, RequestTimeout);

/// Deposit or withdraw
///
/// Answered once the outcome is durable. A `DEPOSIT` to a wallet that does not exist creates
/// it; a `WITHDRAW` from one is `404` and not recorded. A withdrawal takes only what is
/// available (the balance less what holds reserve); with `"pending": true` it holds the
/// amount instead (status `PENDING`), to confirm or void under `/api/v1/holds/{holdId}`.
/// A rejection (`409`) is recorded like a success. Name the operation (`operationId` or `Idempotency-Key`) to retry safely: a repeat
/// with the same payload gets the original status and body with `Idempotent-Replayed: true`;
/// after a `503` the outcome is unknown until such a retry.
#[utoipa::path(
    post,
    path = "/api/v1/wallet",
    operation_id = "submitOperation",
    tag = "operations",
    request_body(content = SubmitOperation, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            pattern = "^[\\x20-\\x7E]{1,255}$", description = "Names the operation instead of `operationId`: 1-255 printable \
                ASCII characters", example = "order-1234"),
    ),
    responses(
        (status = 200, description = "Applied", body = OperationJson,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when this answers an earlier request with the same id"))),
        SubmitProblems,
    )
)]
async fn submit(
    State(state): State<AppState>,
    key: KeyHeader,
    JsonBody(body): JsonBody<SubmitOperation>,
) -> Result<Response, ApiError> {
    let name = request_id(&key, body.operation_id, "operationId")?;
    let request = operation_request(
        name,
        body.wallet_id,
        body.operation_type.into(),
        &body.amount,
        (body.pending, body.timeout_seconds),
    )?;
    submit_write(&state.ledger, request.kind.as_str(), request).await
}

/// The deposit or withdrawal the fields of a body ask for, named as `request_id` named it.
pub(super) fn operation_request(
    (id, key): (OperationId, Option<IdempotencyKey>),
    wallet_id: WalletId,
    kind: OperationKind,
    amount: &RawValue,
    (pending, timeout_seconds): (Option<bool>, Option<u64>),
) -> Result<OperationRequest, ApiError> {
    let pending = parse_pending(pending, timeout_seconds)?;
    if pending.is_some() && kind != OperationKind::Withdraw {
        return Err(ApiError::invalid_request(
            "only a WITHDRAW can be pending: a deposit has nothing to hold",
        ));
    }
    Ok(OperationRequest {
        id,
        wallet_id,
        kind,
        amount: parse_amount(amount)?,
        idempotency_key: key,
        pending,
    })
}

impl Answer for OperationRecord {
    fn outcome(&self) -> &'static str {
        outcome_of(self.status)
    }

    fn shown(&self) -> Result<impl Serialize, ApiError> {
        match self.status.reason() {
            None => Ok(self.view()),
            Some(_) => Err(ApiError::rejected_operation(self)),
        }
    }

    fn view(&self) -> impl Serialize {
        OperationJson::from(self)
    }
}

problems!(OneProblems: InvalidRequest, OperationNotFound, ServiceUnavailable, Unauthorized);

/// Read one operation
///
/// Tells what became of an operation, e.g. after a `503` on the request that sent it.
#[utoipa::path(
    get,
    path = "/api/v1/wallets/{walletId}/operations/{operationId}",
    operation_id = "getOperation",
    tag = "operations",
    params(
        ("walletId" = Uuid, Path, description = "The operation's wallet",
            example = json!(EXAMPLE_WALLET)),
        ("operationId" = Uuid, Path, description = "The operation; one of another wallet is \
            not found", example = json!(EXAMPLE_OPERATION)),
    ),
    responses(
        (status = 200, description = "The operation, applied or rejected", body = OperationJson),
        OneProblems,
    )
)]
async fn one(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<OperationJson>, ApiError> {
    let Path((wallet, operation)) = path?;
    let wallet: WalletId = parse_id(&wallet, "walletId")?;
    let operation: OperationId = parse_id(&operation, "operationId")?;
    let record = reads::operation(&state.pool, wallet, operation)
        .await?
        .ok_or(ErrorCode::OperationNotFound)?;
    Ok(Json(OperationJson::from(&record)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Most operations on the page.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `nextCursor` of the previous page; the newest page when missing.
    #[param(example = "17")]
    cursor: Option<String>,
}

/// One page of a wallet's history, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OperationPage)]
struct HistoryJson {
    items: Vec<OperationJson>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(example = "17")]
    next_cursor: Option<String>,
}

problems!(HistoryProblems: InvalidRequest, WalletNotFound, ServiceUnavailable, Unauthorized);

/// List a wallet's operations
///
/// Newest first, applied and rejected, keyset-paginated: pages stay consistent while new
/// operations arrive.
#[utoipa::path(
    get,
    path = "/api/v1/wallets/{walletId}/operations",
    operation_id = "listOperations",
    tag = "operations",
    params(
        ("walletId" = Uuid, Path, description = "The wallet",
            example = json!(EXAMPLE_WALLET)),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "One page", body = HistoryJson),
        HistoryProblems,
    )
)]
async fn history(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryJson>, ApiError> {
    let wallet: WalletId = parse_id(&path?.0, "walletId")?;
    let Query(query) = query?;
    let max_page = state.max_page_size;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE.min(max_page));
    if !(1..=max_page).contains(&limit) {
        return Err(ApiError::invalid_request(format!(
            "limit must be between 1 and {max_page}"
        )));
    }
    let before = query
        .cursor
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|&seq| seq > 0)
                .ok_or_else(|| ApiError::invalid_request("cursor is not one this API returned"))
        })
        .transpose()?;

    if state.reader.wallet(wallet).await?.is_none() {
        return Err(ApiError::wallet_not_found(wallet));
    }
    let page = reads::history(&state.pool, wallet, before, limit).await?;
    Ok(Json(HistoryJson {
        items: page.items.iter().map(OperationJson::from).collect(),
        next_cursor: page.next_cursor.map(|seq| seq.to_string()),
    }))
}
