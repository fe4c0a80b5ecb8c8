//! The one error type of the HTTP layer, rendered as RFC 9457 problem details.

use crate::domain::OperationRecord;
use crate::ledger::LedgerError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
    /// Anything unexpected. Logged in full, reported to the client without details.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            Self::InvalidAmount(_) => (StatusCode::BAD_REQUEST, "INVALID_AMOUNT"),
            Self::WalletNotFound => (StatusCode::NOT_FOUND, "WALLET_NOT_FOUND"),
            Self::OperationNotFound => (StatusCode::NOT_FOUND, "OPERATION_NOT_FOUND"),
            Self::Rejected(record) => (
                StatusCode::CONFLICT,
                record.status.reason().map_or("REJECTED", |r| r.as_str()),
            ),
            Self::WalletAlreadyExists => (StatusCode::CONFLICT, "WALLET_ALREADY_EXISTS"),
            Self::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
            }
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
            }
            Self::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Rejected(record) => match record.status.reason() {
                Some(crate::domain::RejectReason::BalanceLimitExceeded) => {
                    "the deposit would take the balance past 9007199254740991".to_owned()
                }
                _ => "the wallet's balance is smaller than the withdrawal".to_owned(),
            },
            other => other.to_string(),
        }
    }
}

/// RFC 9457 body. `code` is the stable, machine-readable part; `title` and `detail` are
/// for people.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Problem<'a> {
    r#type: &'static str,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wallet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    balance: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(error) = &self {
            tracing::error!(error = format!("{error:#}"), "internal error");
        }
        let (status, code) = self.status_and_code();
        let record = match &self {
            Self::Rejected(record) => Some(record),
            _ => None,
        };
        let problem = Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            code,
            operation_id: record.map(|r| r.id.to_string()),
            wallet_id: record.map(|r| r.wallet_id.to_string()),
            balance: record.map(|r| r.balance_after.get()),
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
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
        let is_bug = match &error {
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
            Self::Internal(error.into())
        } else {
            tracing::warn!(%error, "database unavailable");
            Self::Unavailable
        }
    }
}
