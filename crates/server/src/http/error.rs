//! The one error type of the HTTP layer, rendered as RFC 9457 problem details.
//!
//! Every error code is declared once, in [`error_codes!`]: its name, its status and the
//! detail it carries by default. The enum clients see, the status of each response and the
//! examples of the OpenAPI description all come from that list.

use crate::domain::{
    Balance, OperationId, OperationRecord, RejectReason, TransferRecord, WalletId,
};
use crate::ledger::LedgerError;
use crate::reader::ReadError;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;
use utoipa::ToSchema;
use uuid::Uuid;

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "1";

/// Declares [`ErrorCode`]: one line per code with its status and default detail.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident = $status:ident, $detail:literal;)+) => {
        /// Stable, machine-readable error code: clients branch on it, never on `title` or
        /// `detail`. `INTERNAL_ERROR` (500) means a bug in the service; the details are in
        /// its logs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $($(#[$doc])* $code,)+
        }

        impl ErrorCode {
            /// Every code, in the order declared.
            pub const ALL: &[Self] = &[$(Self::$code),+];

            pub fn status(self) -> StatusCode {
                match self {
                    $(Self::$code => StatusCode::$status,)+
                }
            }

            /// What a problem with this code says when nothing more specific is known.
            pub fn default_detail(self) -> &'static str {
                match self {
                    $(Self::$code => $detail,)+
                }
            }
        }
    };
}

error_codes! {
    /// Malformed JSON, missing or unknown fields, wrong types, a malformed id or header.
    InvalidRequest = BAD_REQUEST, "the request is malformed";
    InvalidAmount = BAD_REQUEST,
        "amount must be an integer number of minor units between 1 and 9007199254740991";
    /// `fromWalletId` and `toWalletId` of a transfer are the same wallet.
    SameWallet = BAD_REQUEST, "fromWalletId and toWalletId must be different wallets";
    WalletNotFound = NOT_FOUND, "wallet not found";
    OperationNotFound = NOT_FOUND, "operation not found";
    TransferNotFound = NOT_FOUND, "transfer not found";
    /// No hold has this id (a pending request that was refused holds nothing).
    HoldNotFound = NOT_FOUND, "hold not found";
    InsufficientFunds = CONFLICT, "the amount is more than the wallet has available";
    BalanceLimitExceeded = CONFLICT, "the amount would take the balance past 9007199254740991";
    WalletAlreadyExists = CONFLICT, "a wallet with this id already exists";
    /// The hold was already confirmed, voided or expired, other than this request asks.
    HoldNotPending = CONFLICT, "the hold is no longer pending";
    /// An item of an atomic batch that did not fail itself: another one did, so nothing of
    /// the batch was stored.
    LinkedItemFailed = CONFLICT, "another item of this atomic batch failed; nothing was stored";
    IdempotencyKeyReused = UNPROCESSABLE_ENTITY,
        "this idempotency key was already used with a different request";
    PayloadTooLarge = PAYLOAD_TOO_LARGE, "request body is too large";
    UnsupportedMediaType = UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json";
    NotFound = NOT_FOUND, "no such resource";
    MethodNotAllowed = METHOD_NOT_ALLOWED, "method not allowed on this resource";
    UriTooLong = URI_TOO_LONG, "the request target is too long";
    HeadersTooLarge = REQUEST_HEADER_FIELDS_TOO_LARGE, "the request headers are too large";
    ServiceUnavailable = SERVICE_UNAVAILABLE, "the database is unavailable, retry later";
    Unauthorized = UNAUTHORIZED,
        "this API needs an `Authorization: Bearer <token>` header with a valid token";
    RequestTimeout = REQUEST_TIMEOUT, "the request was not received completely in time";
    InternalError = INTERNAL_SERVER_ERROR, "internal error";
}

impl ErrorCode {
    /// The name clients see, e.g. `INSUFFICIENT_FUNDS`.
    pub fn name(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => name,
            _ => format!("{self:?}"),
        }
    }
}

/// An error answered to a client: a code, a detail for people and, where one is concerned,
/// the wallet and the rejected operation or transfer.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: Cow<'static, str>,
    /// What a stored rejection recorded; it goes into the body so that a replay is
    /// byte-for-byte equal.
    /// Boxed: most errors name nothing, and the error travels in every handler's `Result`.
    subject: Box<Subject>,
    /// What went wrong inside: logged, never sent.
    cause: Option<anyhow::Error>,
}

/// The ids and the balance a problem names.
#[derive(Debug, Default)]
struct Subject {
    operation_id: Option<OperationId>,
    transfer_id: Option<OperationId>,
    hold_id: Option<OperationId>,
    wallet_id: Option<WalletId>,
    balance: Option<Balance>,
    available: Option<Balance>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
            subject: Box::default(),
            cause: None,
        }
    }

    /// `400 INVALID_REQUEST` saying what is wrong with the request.
    pub fn invalid_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, detail)
    }

    /// A bug: `500`, with `cause` logged and not sent.
    pub fn internal(cause: anyhow::Error) -> Self {
        Self {
            cause: Some(cause),
            ..ErrorCode::InternalError.into()
        }
    }

    /// `404 WALLET_NOT_FOUND` naming the wallet.
    pub fn wallet_not_found(wallet: WalletId) -> Self {
        Self {
            subject: Box::new(Subject {
                wallet_id: Some(wallet),
                ..Subject::default()
            }),
            ..Self::new(
                ErrorCode::WalletNotFound,
                format!("wallet {wallet} not found"),
            )
        }
    }

    /// `404 HOLD_NOT_FOUND` naming the hold.
    pub fn hold_not_found(hold: OperationId) -> Self {
        Self::about_hold(ErrorCode::HoldNotFound, hold)
    }

    /// `409 HOLD_NOT_PENDING` naming the hold.
    pub fn hold_not_pending(hold: OperationId) -> Self {
        Self::about_hold(ErrorCode::HoldNotPending, hold)
    }

    fn about_hold(code: ErrorCode, hold: OperationId) -> Self {
        Self {
            subject: Box::new(Subject {
                hold_id: Some(hold),
                ..Subject::default()
            }),
            ..code.into()
        }
    }

    /// The answer to an operation the ledger rejected (and stored).
    pub fn rejected_operation(record: &OperationRecord) -> Self {
        Self {
            subject: Box::new(Subject {
                operation_id: Some(record.id),
                wallet_id: Some(record.wallet_id),
                balance: Some(record.balance_after),
                available: Some(record.available_after),
                ..Subject::default()
            }),
            ..Self::rejection(record.status.reason())
        }
    }

    /// The answer to a transfer the ledger rejected (and stored): it names the wallet that
    /// refused it, the source or the destination, with that wallet's balance.
    pub fn rejected_transfer(record: &TransferRecord) -> Self {
        let refused_by = record.refused_by();
        Self {
            subject: Box::new(Subject {
                transfer_id: Some(record.id),
                wallet_id: refused_by.map(|(wallet, ..)| wallet),
                balance: refused_by.map(|(_, balance, _)| balance),
                available: refused_by.map(|(.., available)| available),
                ..Subject::default()
            }),
            ..Self::rejection(record.status.reason())
        }
    }

    fn rejection(reason: Option<RejectReason>) -> Self {
        match reason {
            Some(RejectReason::BalanceLimitExceeded) => ErrorCode::BalanceLimitExceeded.into(),
            Some(RejectReason::InsufficientFunds) | None => ErrorCode::InsufficientFunds.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The body sent to the client. Also renders the OpenAPI examples, so the documented
    /// bodies are the real ones.
    pub fn problem(&self) -> Problem {
        let status = self.code.status();
        let subject = &self.subject;
        Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            operation_id: subject.operation_id.map(Uuid::from),
            transfer_id: subject.transfer_id.map(Uuid::from),
            hold_id: subject.hold_id.map(Uuid::from),
            wallet_id: subject.wallet_id.map(Uuid::from),
            balance: subject.balance.map(Balance::get),
            available: subject.available.map(Balance::get),
        }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.default_detail())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// An RFC 9457 problem, sent as `application/problem+json` with every error. `code` is the
/// stable, machine-readable part; `title` and `detail` are for people. A rejected operation
/// or transfer (`INSUFFICIENT_FUNDS`, `BALANCE_LIMIT_EXCEEDED`) also names itself, the wallet
/// that refused it and that wallet's balance and available money; `WALLET_NOT_FOUND` names
/// the missing wallet, `HOLD_NOT_FOUND` and `HOLD_NOT_PENDING` the hold.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Always `about:blank`: the status and `code` say everything.
    #[schema(example = "about:blank")]
    r#type: &'static str,
    /// The HTTP status's reason phrase.
    #[schema(example = "Conflict")]
    title: &'static str,
    /// The HTTP status code.
    #[schema(example = 409)]
    status: u16,
    /// What went wrong, for people.
    #[schema(value_type = String,
        example = "the amount is more than the wallet has available")]
    detail: Cow<'static, str>,
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wallet_id: Option<Uuid>,
    /// The wallet's balance, unchanged by the rejected operation or transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    balance: Option<u64>,
    /// The part of that balance no hold reserves: what a withdrawal or transfer may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    available: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let status = self.code.status();
        let mut response = (status, Json(self.problem())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::WalletNotFound(wallet) => Self::wallet_not_found(wallet),
            LedgerError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused.into(),
            LedgerError::HoldNotFound(hold) => Self::hold_not_found(hold),
            LedgerError::HoldNotPending(hold) => Self::hold_not_pending(hold),
            LedgerError::DestinationLimit(wallet, balance) => Self {
                subject: Box::new(Subject {
                    wallet_id: Some(wallet),
                    balance: Some(balance),
                    ..Subject::default()
                }),
                ..ErrorCode::BalanceLimitExceeded.into()
            },
            LedgerError::LinkedItemFailed => ErrorCode::LinkedItemFailed.into(),
            LedgerError::Unavailable => ErrorCode::ServiceUnavailable.into(),
            // The writer logged the details already.
            LedgerError::Internal => ErrorCode::InternalError.into(),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Unavailable => ErrorCode::ServiceUnavailable.into(),
            // The reader logged the details already.
            ReadError::Internal => ErrorCode::InternalError.into(),
        }
    }
}

/// A failed read on the pool: the client retries later, or a bug is logged as one.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(error) => {
                tracing::warn!(%error, "database unavailable");
                ErrorCode::ServiceUnavailable.into()
            }
            StoreError::Bug(error) => Self::internal(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_error_is_a_500_without_its_details() {
        let error = ApiError::internal(anyhow::anyhow!("connection to db-7 failed: secret-x"));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "INTERNAL_ERROR");
        assert_eq!(problem["detail"], "internal error");
        assert!(!String::from_utf8_lossy(&body).contains("secret-x"));
    }

    #[test]
    fn every_code_has_the_status_of_the_design() {
        let cases = [
            ("INVALID_REQUEST", 400),
            ("INVALID_AMOUNT", 400),
            ("SAME_WALLET", 400),
            ("WALLET_NOT_FOUND", 404),
            ("OPERATION_NOT_FOUND", 404),
            ("TRANSFER_NOT_FOUND", 404),
            ("HOLD_NOT_FOUND", 404),
            ("INSUFFICIENT_FUNDS", 409),
            ("BALANCE_LIMIT_EXCEEDED", 409),
            ("WALLET_ALREADY_EXISTS", 409),
            ("HOLD_NOT_PENDING", 409),
            ("LINKED_ITEM_FAILED", 409),
            ("IDEMPOTENCY_KEY_REUSED", 422),
            ("PAYLOAD_TOO_LARGE", 413),
            ("UNSUPPORTED_MEDIA_TYPE", 415),
            ("NOT_FOUND", 404),
            ("METHOD_NOT_ALLOWED", 405),
            ("URI_TOO_LONG", 414),
            ("HEADERS_TOO_LARGE", 431),
            ("SERVICE_UNAVAILABLE", 503),
            ("UNAUTHORIZED", 401),
            ("REQUEST_TIMEOUT", 408),
            ("INTERNAL_ERROR", 500),
        ];
        assert_eq!(ErrorCode::ALL.len(), cases.len());
        for (code, (name, status)) in ErrorCode::ALL.iter().zip(cases) {
            assert_eq!(code.name(), name);
            assert_eq!(code.status().as_u16(), status, "{name}");
        }
    }
}
