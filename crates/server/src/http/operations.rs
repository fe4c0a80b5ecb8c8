//! Money movements (`POST /api/v1/wallet`) and their history.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{JsonBody, parse_id};
use super::openapi::{EXAMPLE_OPERATION, EXAMPLE_WALLET, problems};
use crate::domain::{
    Amount, IdempotencyKey, MAX_MONEY, MoneyError, OperationId, OperationKind, OperationRecord,
    OperationRequest, OperationStatus, RejectReason, WalletId,
};
use crate::ledger::{LedgerError, Outcome};
use crate::store::reads;
use crate::telemetry::metric;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Default and largest page of history.
const DEFAULT_PAGE: u32 = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(history))
        .routes(routes!(one))
}

#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum OperationType {
    Deposit,
    Withdraw,
}

impl From<OperationType> for OperationKind {
    fn from(kind: OperationType) -> Self {
        match kind {
            OperationType::Deposit => Self::Deposit,
            OperationType::Withdraw => Self::Withdraw,
        }
    }
}

impl From<OperationKind> for OperationType {
    fn from(kind: OperationKind) -> Self {
        match kind {
            OperationKind::Deposit => Self::Deposit,
            OperationKind::Withdraw => Self::Withdraw,
        }
    }
}

/// `APPLIED`: the balance changed. `REJECTED`: it did not, and `reason` says why; a retry
/// gets the same rejection.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = OperationStatus)]
enum Status {
    Applied,
    Rejected,
}

/// Why an operation was rejected.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = RejectReason)]
enum Reason {
    InsufficientFunds,
    BalanceLimitExceeded,
}

impl From<RejectReason> for Reason {
    fn from(reason: RejectReason) -> Self {
        match reason {
            RejectReason::InsufficientFunds => Self::InsufficientFunds,
            RejectReason::BalanceLimitExceeded => Self::BalanceLimitExceeded,
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
    operation_type: OperationType,
    /// Minor units. Kept as raw JSON text so that a float, a string or a number of any size
    /// (even past the range of a double) gets `INVALID_AMOUNT` rather than a parse error.
    #[schema(value_type = u64, minimum = 1, maximum = 9_007_199_254_740_991_u64, example = 1000)]
    amount: Box<RawValue>,
    /// Names the operation so that a retry applies it at most once. Not together with an
    /// `Idempotency-Key` header.
    #[schema(value_type = Option<Uuid>, example = json!(EXAMPLE_OPERATION))]
    operation_id: Option<OperationId>,
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
    /// The wallet's balance right after this operation (unchanged when rejected).
    #[schema(example = 1000, maximum = 9_007_199_254_740_991_u64)]
    balance: u64,
    #[schema(example = "2026-01-01T00:00:00Z")]
    created_at: DateTime<Utc>,
}

impl From<&OperationRecord> for OperationJson {
    fn from(record: &OperationRecord) -> Self {
        Self {
            operation_id: record.id.into(),
            wallet_id: record.wallet_id.into(),
            operation_type: record.kind.into(),
            amount: record.amount.get(),
            status: match record.status {
                OperationStatus::Applied => Status::Applied,
                OperationStatus::Rejected(_) => Status::Rejected,
            },
            reason: record.status.reason().map(Reason::from),
            balance: record.balance_after.get(),
            created_at: record.created_at,
        }
    }
}

fn parse_amount(raw: &RawValue) -> Result<Amount, ApiError> {
    let invalid = |why: &str| ApiError::new(ErrorCode::InvalidAmount, format!("amount {why}"));
    let text = raw.get().trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(&format!(
            "must be an integer number of minor units between 1 and {MAX_MONEY}"
        )));
    }
    if text.starts_with('-') {
        return Err(invalid("must be at least 1"));
    }
    // Too many digits for a u64 is simply too large.
    let value = text.parse::<u64>().unwrap_or(u64::MAX);
    Amount::new(value).map_err(|error| match error {
        MoneyError::NotPositive => invalid("must be at least 1"),
        MoneyError::TooLarge => invalid(&format!("must not exceed {MAX_MONEY}")),
    })
}

/// The `Idempotency-Key` header; a second one was refused before (`guard`).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    IdempotencyKey::parse(value.as_bytes())
        .map(Some)
        .map_err(ApiError::invalid_request)
}

problems!(SubmitProblems: InvalidRequest, InvalidAmount, WalletNotFound, InsufficientFunds,
    BalanceLimitExceeded, PayloadTooLarge, UnsupportedMediaType, IdempotencyKeyReused,
    ServiceUnavailable, Unauthorized, RequestTimeout);

/// Deposit or withdraw
///
/// Answered once the outcome is durable. A `DEPOSIT` to a wallet that does not exist creates
/// it; a `WITHDRAW` from one is `404` and not recorded. A rejection (`409`) is recorded like a
/// success. Name the operation (`operationId` or `Idempotency-Key`) to retry safely: a repeat
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
    headers: HeaderMap,
    JsonBody(body): JsonBody<SubmitOperation>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let id = match (body.operation_id, &key) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "send either operationId or an Idempotency-Key header, not both",
            ));
        }
        (Some(id), None) => id,
        (None, Some(key)) => key.operation_id(),
        (None, None) => OperationId::new_random(),
    };
    let request = OperationRequest {
        id,
        wallet_id: body.wallet_id,
        kind: body.operation_type.into(),
        amount: parse_amount(&body.amount)?,
        idempotency_key: key,
    };

    let kind = request.kind;
    let result = state.ledger.submit(request).await;
    metrics::counter!(metric::OPERATIONS, "type" => kind.as_str(), "outcome" => outcome_label(&result))
        .increment(1);
    let outcome = result?;
    let mut response = match outcome.record.status {
        OperationStatus::Applied => Json(OperationJson::from(&outcome.record)).into_response(),
        OperationStatus::Rejected(_) => ApiError::rejected(outcome.record).into_response(),
    };
    if outcome.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The `outcome` label of the operations counter. A replay is counted apart: it decided
/// nothing new.
fn outcome_label(result: &Result<Outcome, LedgerError>) -> &'static str {
    match result {
        Ok(outcome) if outcome.replayed => "replayed",
        Ok(outcome) => match outcome.record.status.reason() {
            None => "applied",
            Some(RejectReason::InsufficientFunds) => "insufficient_funds",
            Some(RejectReason::BalanceLimitExceeded) => "balance_limit_exceeded",
        },
        Err(LedgerError::WalletNotFound) => "wallet_not_found",
        Err(LedgerError::IdempotencyKeyReused) => "idempotency_key_reused",
        Err(LedgerError::Unavailable) => "unavailable",
        Err(LedgerError::Internal) => "internal",
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
        return Err(ErrorCode::WalletNotFound.into());
    }
    let page = reads::history(&state.pool, wallet, before, limit).await?;
    Ok(Json(HistoryJson {
        items: page.items.iter().map(OperationJson::from).collect(),
        next_cursor: page.next_cursor.map(|seq| seq.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(json: &str) -> &'static str {
        let raw = RawValue::from_string(json.to_owned()).expect("valid JSON");
        match parse_amount(&raw) {
            Ok(_) => "OK",
            Err(error) if error.code() == ErrorCode::InvalidAmount => "INVALID_AMOUNT",
            Err(_) => "OTHER",
        }
    }

    #[test]
    fn only_integers_in_range_are_amounts() {
        assert_eq!(code("1"), "OK");
        assert_eq!(code(&MAX_MONEY.to_string()), "OK");
        let too_large = (MAX_MONEY + 1).to_string();
        for bad in [
            "0",
            "-0",
            "-3",
            &too_large,
            "99999999999999999999999",
            "1e400",
            "1.5",
            "10.0",
            "1e3",
            "\"10\"",
            "true",
            "null",
            "[1]",
            "{}",
        ] {
            assert_eq!(code(bad), "INVALID_AMOUNT", "{bad}");
        }
    }
}
