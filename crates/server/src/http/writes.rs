//! What every endpoint that moves money shares: reading the amount and the hold terms,
//! naming the request (a body id or an `Idempotency-Key` header), submitting it, counting
//! and answering it.

use super::error::{ApiError, ErrorCode};
use crate::domain::{
    Amount, IdempotencyKey, MAX_MONEY, MoneyError, OperationId, OperationStatus, Pending,
    RejectReason,
};
use crate::ledger::{Ledger, LedgerError, Outcome, Record, Submission};
use crate::telemetry::metric;
use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use std::convert::Infallible;
use std::num::NonZeroU32;

pub(super) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The `amount` of a body, kept as raw JSON text so that a float, a string or a number of
/// any size (even past the range of a double) gets `INVALID_AMOUNT` rather than a parse
/// error.
pub fn parse_amount(raw: &RawValue) -> Result<Amount, ApiError> {
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

/// The hold a write asks for with `"pending": true`, expiring after `timeoutSeconds` if
/// given; `None` for a write that moves money at once.
pub fn parse_pending(
    pending: Option<bool>,
    timeout_seconds: Option<u64>,
) -> Result<Option<Pending>, ApiError> {
    match (pending.unwrap_or(false), timeout_seconds) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(ApiError::invalid_request(
            "timeoutSeconds applies only with \"pending\": true",
        )),
        (true, None) => Ok(Some(Pending { timeout: None })),
        (true, Some(seconds)) => {
            let timeout = u32::try_from(seconds)
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or_else(|| {
                    ApiError::invalid_request(format!(
                        "timeoutSeconds must be between 1 and {}",
                        u32::MAX
                    ))
                })?;
            Ok(Some(Pending {
                timeout: Some(timeout),
            }))
        }
    }
}

/// A request's `Idempotency-Key` header, if it has one: the one header a write reads, taken
/// without copying the others.
pub struct KeyHeader(Option<HeaderValue>);

impl KeyHeader {
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for KeyHeader {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(parts.headers.get(IDEMPOTENCY_KEY).cloned()))
    }
}

/// The id a write is known by: the one in its body (`field`), the one its `Idempotency-Key`
/// stands for (with the key, which is stored), or a new one. Both at once are refused. A
/// second `Idempotency-Key` header was refused before (`guard`).
pub fn request_id(
    header: &KeyHeader,
    body_id: Option<OperationId>,
    field: &str,
) -> Result<(OperationId, Option<IdempotencyKey>), ApiError> {
    let key = header
        .0
        .as_ref()
        .map(|value| IdempotencyKey::parse(value.as_bytes()))
        .transpose()
        .map_err(ApiError::invalid_request)?;
    match (body_id, key) {
        (Some(_), Some(_)) => Err(ApiError::invalid_request(format!(
            "send either {field} or an Idempotency-Key header, not both"
        ))),
        (Some(id), None) => Ok((id, None)),
        (None, Some(key)) => Ok((key.operation_id(), Some(key))),
        (None, None) => Ok((OperationId::generate(), None)),
    }
}

/// How a decided record is answered.
pub trait Answer {
    /// The `outcome` label of the operations counter.
    fn outcome(&self) -> &'static str;
    /// The record as the API shows it, or the problem of a stored rejection.
    fn shown(&self) -> Result<impl Serialize, ApiError>;
    /// The record as its reads show it, a rejection included.
    fn view(&self) -> impl Serialize;
}

/// A decided record of any kind as its reads show it: the `data` of its event.
pub fn record_data(record: &Record) -> Box<RawValue> {
    let raw = match record {
        Record::Operation(record) => serde_json::value::to_raw_value(&record.view()),
        Record::Transfer(record) => serde_json::value::to_raw_value(&record.view()),
        Record::Hold(record) => serde_json::value::to_raw_value(&record.view()),
    };
    raw.expect("a record serializes to JSON")
}

/// A decided record as the answer to its request.
fn answer(record: &impl Answer) -> Response {
    match record.shown() {
        Ok(shown) => Json(shown).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Submits a write to the ledger, counts it by `kind` and outcome, and answers it: the
/// record, or the stored rejection as a problem, marked when it replays an earlier answer.
pub async fn submit<S>(
    ledger: &Ledger,
    kind: &'static str,
    request: S,
) -> Result<Response, ApiError>
where
    S: Submission,
    S::Record: Answer,
{
    let result = ledger.submit(request).await;
    count(kind, &result);
    let outcome = result?;
    let mut response = answer(&outcome.record);
    if outcome.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The `outcome` label of a decided operation or transfer.
pub fn outcome_of(status: OperationStatus) -> &'static str {
    match status {
        OperationStatus::Rejected(RejectReason::InsufficientFunds) => "insufficient_funds",
        OperationStatus::Rejected(RejectReason::BalanceLimitExceeded) => "balance_limit_exceeded",
        OperationStatus::Pending => "pending",
        OperationStatus::Applied | OperationStatus::Voided | OperationStatus::Expired => "applied",
    }
}

/// Counts a write by type and outcome. A replay is counted apart: it decided nothing new.
pub(super) fn count<R: Answer>(kind: &'static str, result: &Result<Outcome<R>, LedgerError>) {
    let outcome = match result {
        Ok(outcome) if outcome.replayed => "replayed",
        Ok(outcome) => outcome.record.outcome(),
        Err(LedgerError::WalletNotFound(_)) => "wallet_not_found",
        Err(LedgerError::IdempotencyKeyReused) => "idempotency_key_reused",
        Err(LedgerError::HoldNotFound(_)) => "hold_not_found",
        Err(LedgerError::HoldNotPending(_)) => "hold_not_pending",
        Err(LedgerError::DestinationLimit(..)) => "balance_limit_exceeded",
        Err(LedgerError::LinkedItemFailed) => "linked_item_failed",
        Err(LedgerError::Unavailable) => "unavailable",
        Err(LedgerError::Internal) => "internal",
    };
    metrics::counter!(metric::OPERATIONS, "type" => kind, "outcome" => outcome).increment(1);
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
