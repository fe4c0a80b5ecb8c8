//! `/api/v1/transfers`: move money from one wallet to another, read a transfer.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{JsonBody, parse_id};
use super::openapi::{EXAMPLE_OPERATION, EXAMPLE_PAYEE, EXAMPLE_WALLET, problems};
use super::operations::{Reason, Status};
use super::writes::{
    Answer, KeyHeader, outcome_of, parse_amount, parse_pending, request_id, submit,
};
use crate::domain::{IdempotencyKey, OperationId, TransferRecord, TransferRequest, WalletId};
use crate::store::reads;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(transfer))
        .routes(routes!(one))
}

/// Money moved from one wallet to another.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SubmitTransfer {
    /// Names the transfer so that a retry applies it at most once. Not together with an
    /// `Idempotency-Key` header. One namespace with `operationId`: an id that names a
    /// deposit or a withdrawal cannot name a transfer.
    #[schema(value_type = Option<Uuid>, example = json!(EXAMPLE_OPERATION))]
    transfer_id: Option<OperationId>,
    /// The wallet the money leaves; it must exist.
    #[schema(value_type = Uuid, example = json!(EXAMPLE_WALLET))]
    from_wallet_id: WalletId,
    /// The wallet the money enters; it must exist and differ from `fromWalletId`.
    #[schema(value_type = Uuid, example = json!(EXAMPLE_PAYEE))]
    to_wallet_id: WalletId,
    /// Minor units.
    #[schema(value_type = u64, minimum = 1, maximum = 9_007_199_254_740_991_u64, example = 1000)]
    amount: Box<RawValue>,
    /// `true` holds the amount on the source instead of moving it: a hold, named by the
    /// transfer's id, to confirm or void later. The destination sees nothing until then.
    #[schema(default = false)]
    pending: Option<bool>,
    /// A pending transfer expires (its amount is released) this many seconds after it is
    /// placed; without it, it never expires.
    #[schema(minimum = 1, maximum = 4_294_967_295_u64, example = 600)]
    timeout_seconds: Option<u64>,
}

/// A transfer record.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Transfer)]
struct TransferJson {
    #[schema(example = json!(EXAMPLE_OPERATION))]
    transfer_id: Uuid,
    #[schema(example = json!(EXAMPLE_WALLET))]
    from_wallet_id: Uuid,
    #[schema(example = json!(EXAMPLE_PAYEE))]
    to_wallet_id: Uuid,
    #[schema(example = 1000, minimum = 1, maximum = 9_007_199_254_740_991_u64)]
    amount: u64,
    status: Status,
    /// Present when `status` is `REJECTED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
    /// The source's balance right after the transfer (unchanged when rejected or pending).
    #[schema(example = 4000, maximum = 9_007_199_254_740_991_u64)]
    from_balance: u64,
    /// The part of the source's balance no hold reserved right after the transfer.
    #[schema(example = 4000, maximum = 9_007_199_254_740_991_u64)]
    from_available: u64,
    /// The destination's balance right after the transfer (unchanged when rejected or
    /// pending).
    #[schema(example = 1000, maximum = 9_007_199_254_740_991_u64)]
    to_balance: u64,
    /// The part of the destination's balance no hold reserved right after the transfer.
    #[schema(example = 1000, maximum = 9_007_199_254_740_991_u64)]
    to_available: u64,
    #[schema(example = "2026-01-01T00:00:00Z")]
    created_at: DateTime<Utc>,
    /// When a pending transfer's hold expires; absent when it never does.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
}

impl From<&TransferRecord> for TransferJson {
    fn from(record: &TransferRecord) -> Self {
        let (status, reason) = Status::of(record.status);
        Self {
            transfer_id: record.id.into(),
            from_wallet_id: record.from.into(),
            to_wallet_id: record.to.into(),
            amount: record.amount.get(),
            status,
            reason,
            from_balance: record.from_balance.get(),
            from_available: record.from_available.get(),
            to_balance: record.to_balance.get(),
            to_available: record.to_available.get(),
            created_at: record.created_at,
            expires_at: record.expires_at(),
        }
    }
}

problems!(TransferProblems, super::openapi::transfer_sample: InvalidRequest, InvalidAmount, SameWallet, WalletNotFound,
    InsufficientFunds, BalanceLimitExceeded, PayloadTooLarge, UnsupportedMediaType,
    IdempotencyKeyReused, ServiceUnavailable, Unauthorized, RequestTimeout);

/// Transfer between wallets
///
/// Moves `amount` from one wallet to another atomically: both balances change in one
/// commit, or neither does. Answered once the outcome is durable. Both wallets must exist
/// (`404` names the missing one, and nothing is recorded); a transfer never creates a
/// wallet. A source with too little available money (its balance less what holds reserve)
/// or a destination that would pass the balance limit is a rejection (`409`) that is
/// recorded like a success. With `"pending": true` the amount is held on the source (status
/// `PENDING`) until it is confirmed or voided under `/api/v1/holds/{holdId}`, or expires. Name the transfer
/// (`transferId` or `Idempotency-Key`) to retry safely: a repeat with the same payload gets
/// the original status and body with `Idempotent-Replayed: true`.
#[utoipa::path(
    post,
    path = "/api/v1/transfers",
    operation_id = "submitTransfer",
    tag = "transfers",
    request_body(content = SubmitTransfer, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            pattern = "^[\\x20-\\x7E]{1,255}$", description = "Names the transfer instead of \
                `transferId`: 1-255 printable ASCII characters", example = "payout-1234"),
    ),
    responses(
        (status = 200, description = "Applied", body = TransferJson,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when this answers an earlier request with the same id"))),
        TransferProblems,
    )
)]
async fn transfer(
    State(state): State<AppState>,
    key: KeyHeader,
    JsonBody(body): JsonBody<SubmitTransfer>,
) -> Result<Response, ApiError> {
    let name = request_id(&key, body.transfer_id, "transferId")?;
    let request = transfer_request(
        name,
        (body.from_wallet_id, body.to_wallet_id),
        &body.amount,
        (body.pending, body.timeout_seconds),
    )?;
    submit(&state.ledger, "TRANSFER", request).await
}

/// The transfer the fields of a body ask for, named as `request_id` named it.
pub(super) fn transfer_request(
    (id, key): (OperationId, Option<IdempotencyKey>),
    (from, to): (WalletId, WalletId),
    amount: &RawValue,
    (pending, timeout_seconds): (Option<bool>, Option<u64>),
) -> Result<TransferRequest, ApiError> {
    let amount = parse_amount(amount)?;
    let pending = parse_pending(pending, timeout_seconds)?;
    Ok(TransferRequest::new(id, from, to, amount, key)
        .map_err(|_| ApiError::from(ErrorCode::SameWallet))?
        .pending(pending))
}

impl Answer for TransferRecord {
    fn outcome(&self) -> &'static str {
        outcome_of(self.status)
    }

    fn shown(&self) -> Result<impl Serialize, ApiError> {
        match self.status.reason() {
            None => Ok(self.view()),
            Some(_) => Err(ApiError::rejected_transfer(self)),
        }
    }

    fn view(&self) -> impl Serialize {
        TransferJson::from(self)
    }
}

problems!(OneProblems: InvalidRequest, TransferNotFound, ServiceUnavailable, Unauthorized);

/// Read a transfer
///
/// Tells what became of a transfer, e.g. after a `503` on the request that sent it. A
/// pending transfer's record stays as it was answered; its hold tells what became of it.
#[utoipa::path(
    get,
    path = "/api/v1/transfers/{transferId}",
    operation_id = "getTransfer",
    tag = "transfers",
    params(("transferId" = Uuid, Path, description = "The transfer",
        example = json!(EXAMPLE_OPERATION))),
    responses(
        (status = 200, description = "The transfer, applied or rejected", body = TransferJson),
        OneProblems,
    )
)]
async fn one(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TransferJson>, ApiError> {
    let id: OperationId = parse_id(&path?.0, "transferId")?;
    let record = reads::transfer(&state.pool, id)
        .await?
        .ok_or(ErrorCode::TransferNotFound)?;
    Ok(Json(TransferJson::from(&record)))
}
