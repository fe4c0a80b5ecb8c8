//! The one error type of the HTTP layer, rendered as RFC 9457 problem details.

use crate::domain::{OperationRecord, RejectReason};
use crate::ledger::LedgerError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidAmount(String),
    #[error("wallet not found")]
    WalletNotFound,
    #[error("operation not found")]
    OperationNotFound,
    /// A stored rejection; the record goes into the body so a replay is byte-for-byte equal.
    #[error("operation rejected")]
    Rejected(Box<OperationRecord>),
    #[error("a wallet with this id already exists")]
    WalletAlreadyExists,
    #[error("this idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("no such resource")]
    NotFound,
    #[error("method not allowed on this resource")]
    MethodNotAllowed,
    #[error("the database is unavailable, retry later")]
    Unavailable,
    #[error("this API needs an `Authorization: Bearer <token>` header with a valid token")]
    Unauthorized,
    #[error("the request was not received completely in time")]
    RequestTimeout,
    /// Anything unexpected. Logged in full, reported to the client without details.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Stable, machine-readable error code: clients branch on it, never on `title` or `detail`.
/// `INTERNAL_ERROR` (500) means a bug in the service; the details are in its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidAmount,
    WalletNotFound,
    OperationNotFound,
    InsufficientFunds,
    BalanceLimitExceeded,
    WalletAlreadyExists,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    ServiceUnavailable,
    Unauthorized,
    RequestTimeout,
    InternalError,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest | Self::InvalidAmount => StatusCode::BAD_REQUEST,
            Self::WalletNotFound | Self::OperationNotFound | Self::NotFound => {
                StatusCode::NOT_FOUND
            }
            Self::InsufficientFunds | Self::BalanceLimitExceeded | Self::WalletAlreadyExists => {
                StatusCode::CONFLICT
            }
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::InvalidAmount(_) => ErrorCode::InvalidAmount,
            Self::WalletNotFound => ErrorCode::WalletNotFound,
            Self::OperationNotFound => ErrorCode::OperationNotFound,
            Self::Rejected(record) => match record.status.reason() {
                Some(RejectReason::BalanceLimitExceeded) => ErrorCode::BalanceLimitExceeded,
                Some(RejectReason::InsufficientFunds) | None => ErrorCode::InsufficientFunds,
            },
            Self::WalletAlreadyExists => ErrorCode::WalletAlreadyExists,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Unavailable => ErrorCode::ServiceUnavailable,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::RequestTimeout => ErrorCode::RequestTimeout,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub(super) fn detail(&self) -> String {
        match self.code() {
            ErrorCode::BalanceLimitExceeded => {
                "the deposit would take the balance past 9007199254740991".to_owned()
            }
            ErrorCode::InsufficientFunds => {
                "the wallet's balance is smaller than the withdrawal".to_owned()
            }
            _ => self.to_string(),
        }
    }

    /// The body sent to the client. Also renders the OpenAPI examples, so the documented
    /// bodies are the real ones.
    pub fn problem(&self) -> Problem {
        let status = self.code().status();
        let record = match self {
            Self::Rejected(record) => Some(record),
            _ => None,
        };
        Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code(),
            operation_id: record.map(|r| Uuid::from(r.id)),
            wallet_id: record.map(|r| Uuid::from(r.wallet_id)),
            balance: record.map(|r| r.balance_after.get()),
        }
    }
}

/// An RFC 9457 problem, sent as `application/problem+json` with every error. `code` is the
/// stable, machine-readable part; `title` and `detail` are for people. A rejected operation
/// (`INSUFFICIENT_FUNDS`, `BALANCE_LIMIT_EXCEEDED`) also names the operation, its wallet and
/// the wallet's balance.
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
    #[schema(example = "the wallet's balance is smaller than the withdrawal")]
    detail: String,
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wallet_id: Option<Uuid>,
    /// The wallet's balance, unchanged by the rejected operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    balance: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(error) = &self {
            tracing::error!(error = format!("{error:#}"), "internal error");
        }
        let problem = self.problem();
        let status = self.code().status();
        let mut response = (status, Json(problem)).into_response();
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
            LedgerError::WalletNotFound => Self::WalletNotFound,
            LedgerError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            LedgerError::Unavailable => Self::Unavailable,
        }
    }
}

/// A database failure on a read. Data, integrity and syntax errors are bugs (500, logged);
/// anything else means the database is unreachable, restarting or overloaded: the client's
/// 503, to retry.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::from(Arc::new(error))
    }
}

/// A database failure shared by every read of a coalesced lookup.
impl From<Arc<sqlx::Error>> for ApiError {
    fn from(error: Arc<sqlx::Error>) -> Self {
        let is_bug = match error.as_ref() {
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                ["22", "23", "42"]
                    .iter()
                    .any(|class| code.starts_with(class))
            }),
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => false,
            _ => true,
        };
        if is_bug {
            Self::Internal(anyhow::Error::new(error))
        } else {
            tracing::warn!(%error, "database unavailable");
            Self::Unavailable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_error_is_a_500_without_its_details() {
        let error = ApiError::Internal(anyhow::anyhow!("connection to db-7 failed: secret-x"));
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
            (ErrorCode::InvalidRequest, 400),
            (ErrorCode::InvalidAmount, 400),
            (ErrorCode::WalletNotFound, 404),
            (ErrorCode::OperationNotFound, 404),
            (ErrorCode::InsufficientFunds, 409),
            (ErrorCode::BalanceLimitExceeded, 409),
            (ErrorCode::WalletAlreadyExists, 409),
            (ErrorCode::IdempotencyKeyReused, 422),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::UnsupportedMediaType, 415),
            (ErrorCode::NotFound, 404),
            (ErrorCode::MethodNotAllowed, 405),
            (ErrorCode::ServiceUnavailable, 503),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::RequestTimeout, 408),
            (ErrorCode::InternalError, 500),
        ];
        for (code, status) in cases {
            assert_eq!(code.status().as_u16(), status, "{code:?}");
        }
    }
}
