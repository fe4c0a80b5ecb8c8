//! Money movements (`POST /api/v1/wallet`) and their history.

use super::AppState;
use super::error::ApiError;
use super::extract::{JsonBody, parse_id};
use crate::domain::{
    Amount, IdempotencyKey, MAX_MONEY, MoneyError, OperationId, OperationKind, OperationRecord,
    OperationRequest, OperationStatus, WalletId,
};
use crate::store::reads;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Default and largest page of history.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/wallet", post(submit))
        .route("/api/v1/wallets/{wallet_id}/operations", get(history))
        .route(
            "/api/v1/wallets/{wallet_id}/operations/{operation_id}",
            get(one),
        )
}

#[derive(Clone, Copy, Deserialize)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SubmitOperation {
    wallet_id: Uuid,
    operation_type: OperationType,
    /// Kept raw so that a float, string or out-of-range number gets `INVALID_AMOUNT`.
    amount: serde_json::Value,
    operation_id: Option<Uuid>,
}

/// The operation record, as every endpoint reports it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OperationJson {
    operation_id: String,
    wallet_id: String,
    operation_type: &'static str,
    amount: u64,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    balance: u64,
    created_at: DateTime<Utc>,
}

impl From<&OperationRecord> for OperationJson {
    fn from(record: &OperationRecord) -> Self {
        Self {
            operation_id: record.id.to_string(),
            wallet_id: record.wallet_id.to_string(),
            operation_type: record.kind.as_str(),
            amount: record.amount.get(),
            status: record.status.as_str(),
            reason: record.status.reason().map(|r| r.as_str()),
            balance: record.balance_after.get(),
            created_at: record.created_at,
        }
    }
}

fn parse_amount(value: &serde_json::Value) -> Result<Amount, ApiError> {
    let invalid = |why: &str| ApiError::InvalidAmount(format!("amount {why}"));
    match value {
        serde_json::Value::Number(n) if n.is_u64() => Amount::new(n.as_u64().unwrap_or_default())
            .map_err(|error| match error {
                MoneyError::NotPositive => invalid("must be at least 1"),
                MoneyError::TooLarge => invalid(&format!("must not exceed {MAX_MONEY}")),
            }),
        serde_json::Value::Number(n) if n.is_i64() => Err(invalid("must be at least 1")),
        _ => Err(invalid(&format!(
            "must be an integer number of minor units between 1 and {MAX_MONEY}"
        ))),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidRequest(
            "send one Idempotency-Key header".into(),
        ));
    }
    IdempotencyKey::parse(value.as_bytes())
        .map(Some)
        .map_err(|why| ApiError::InvalidRequest(why.into()))
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SubmitOperation>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let id = match (body.operation_id, &key) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "send either operationId or an Idempotency-Key header, not both".into(),
            ));
        }
        (Some(id), None) => OperationId::from(id),
        (None, Some(key)) => key.operation_id(),
        (None, None) => OperationId::new_random(),
    };
    let request = OperationRequest {
        id,
        wallet_id: WalletId::from(body.wallet_id),
        kind: body.operation_type.into(),
        amount: parse_amount(&body.amount)?,
        idempotency_key: key,
    };

    let outcome = state.ledger.submit(request).await?;
    let mut response = match outcome.record.status {
        OperationStatus::Applied => Json(OperationJson::from(&outcome.record)).into_response(),
        OperationStatus::Rejected(_) => {
            ApiError::Rejected(Box::new(outcome.record)).into_response()
        }
    };
    if outcome.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn one(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<OperationJson>, ApiError> {
    let Path((wallet, operation)) = path?;
    let wallet: WalletId = parse_id(&wallet, "walletId")?;
    let operation: OperationId = parse_id(&operation, "operationId")?;
    let record = reads::operation(&state.pool, wallet, operation)
        .await?
        .ok_or(ApiError::OperationNotFound)?;
    Ok(Json(OperationJson::from(&record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson {
    items: Vec<OperationJson>,
    next_cursor: Option<String>,
}

async fn history(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryJson>, ApiError> {
    let wallet: WalletId = parse_id(&path?.0, "walletId")?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let before = query
        .cursor
        .map(|c| {
            c.parse::<i64>().ok().filter(|&seq| seq > 0).ok_or_else(|| {
                ApiError::InvalidRequest("cursor is not one this API returned".into())
            })
        })
        .transpose()?;

    if reads::wallet(&state.pool, wallet).await?.is_none() {
        return Err(ApiError::WalletNotFound);
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
    use serde_json::json;

    fn code(result: Result<Amount, ApiError>) -> &'static str {
        match result {
            Ok(_) => "OK",
            Err(ApiError::InvalidAmount(_)) => "INVALID_AMOUNT",
            Err(_) => "OTHER",
        }
    }

    #[test]
    fn only_integers_in_range_are_amounts() {
        assert_eq!(code(parse_amount(&json!(1))), "OK");
        assert_eq!(code(parse_amount(&json!(MAX_MONEY))), "OK");
        for bad in [
            json!(0),
            json!(-3),
            json!(MAX_MONEY + 1),
            json!(1.5),
            json!(10.0),
            json!("10"),
            json!(true),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(code(parse_amount(&bad)), "INVALID_AMOUNT", "{bad}");
        }
    }
}
