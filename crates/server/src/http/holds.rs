//! `/api/v1/holds`: read a hold, confirm it, void it.
//!
//! A hold is placed by a pending withdrawal or transfer and named by its id. Confirming or
//! voiding it is a decision the writers take like any other; it needs the hold's wallets,
//! which never change, so that it goes to the writer of the hold's source and is batched
//! with that wallet's other requests: the ledger knows them for the holds placed through
//! this instance, the others are read first.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{OptionalJsonBody, parse_id};
use super::openapi::{EXAMPLE_OPERATION, EXAMPLE_PAYEE, EXAMPLE_WALLET, problems};
use super::writes::{Answer, parse_amount, submit};
use crate::domain::{Amount, HoldDecision, HoldRecord, HoldStatus, HoldTerms, OperationId};
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
        .routes(routes!(one))
        .routes(routes!(confirm))
        .routes(routes!(void))
}

/// What placed the hold.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum HoldType {
    Withdraw,
    Transfer,
}

/// `PENDING`: the amount is reserved. `CONFIRMED`: `confirmedAmount` moved and the rest was
/// released. `VOIDED` / `EXPIRED`: all of it was released, on request or at `expiresAt`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = HoldStatus)]
enum Status {
    Pending,
    Confirmed,
    Voided,
    Expired,
}

/// A hold record.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Hold)]
struct HoldJson {
    /// The id of the pending withdrawal or transfer that placed it.
    #[schema(example = json!(EXAMPLE_OPERATION))]
    hold_id: Uuid,
    hold_type: HoldType,
    /// The wallet whose money is held.
    #[schema(example = json!(EXAMPLE_WALLET))]
    wallet_id: Uuid,
    /// A pending transfer's destination (`TRANSFER` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(EXAMPLE_PAYEE))]
    to_wallet_id: Option<Uuid>,
    /// The amount held.
    #[schema(example = 1000, minimum = 1, maximum = 9_007_199_254_740_991_u64)]
    amount: u64,
    /// The amount moved (`CONFIRMED` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 800, minimum = 1, maximum = 9_007_199_254_740_991_u64)]
    confirmed_amount: Option<u64>,
    status: Status,
    /// When it expires if still pending; absent when it never does.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[schema(example = "2026-01-01T00:00:00Z")]
    created_at: DateTime<Utc>,
    /// When it was confirmed, voided or expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<DateTime<Utc>>,
}

impl From<&HoldRecord> for HoldJson {
    fn from(hold: &HoldRecord) -> Self {
        let (status, confirmed_amount) = match hold.status {
            HoldStatus::Pending => (Status::Pending, None),
            HoldStatus::Confirmed(amount) => (Status::Confirmed, Some(amount.get())),
            HoldStatus::Voided => (Status::Voided, None),
            HoldStatus::Expired => (Status::Expired, None),
        };
        Self {
            hold_id: hold.id.into(),
            hold_type: match hold.to {
                Some(_) => HoldType::Transfer,
                None => HoldType::Withdraw,
            },
            wallet_id: hold.wallet.into(),
            to_wallet_id: hold.to.map(Uuid::from),
            amount: hold.amount.get(),
            confirmed_amount,
            status,
            expires_at: hold.expires_at,
            created_at: hold.created_at,
            resolved_at: hold.resolved_at,
        }
    }
}

/// A decision about a hold is never a stored rejection: what refuses it is an error.
impl Answer for HoldRecord {
    fn outcome(&self) -> &'static str {
        "applied"
    }

    fn shown(&self) -> Result<impl Serialize, ApiError> {
        Ok(self.view())
    }

    fn view(&self) -> impl Serialize {
        HoldJson::from(self)
    }
}

/// The id in the path.
fn hold_id(path: Result<Path<String>, PathRejection>) -> Result<OperationId, ApiError> {
    parse_id(&path?.0, "holdId")
}

/// The hold named `id`, as stored now.
async fn find(state: &AppState, id: OperationId) -> Result<HoldRecord, ApiError> {
    reads::hold(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::hold_not_found(id))
}

/// What a decision about hold `id` needs to know of it: from the ledger when the hold was
/// placed through this instance, from the database otherwise.
pub(super) async fn terms(state: &AppState, id: OperationId) -> Result<HoldTerms, ApiError> {
    match state.ledger.placed_hold(id) {
        Some(terms) => Ok(terms),
        None => Ok(find(state, id).await?.terms()),
    }
}

problems!(OneProblems: InvalidRequest, HoldNotFound, ServiceUnavailable, Unauthorized);

/// Read a hold
///
/// Where a hold stands: pending, confirmed (and for how much), voided or expired.
#[utoipa::path(
    get,
    path = "/api/v1/holds/{holdId}",
    operation_id = "getHold",
    tag = "holds",
    params(("holdId" = Uuid, Path, description = "The id of the pending withdrawal or \
        transfer that placed the hold", example = json!(EXAMPLE_OPERATION))),
    responses(
        (status = 200, description = "The hold", body = HoldJson),
        OneProblems,
    )
)]
async fn one(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<HoldJson>, ApiError> {
    Ok(Json(HoldJson::from(&find(&state, hold_id(path)?).await?)))
}

/// Body of a confirmation; the body itself is optional.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmHold {
    /// How much of the hold to move, at most the held amount; all of it when missing. The
    /// rest is released.
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 9_007_199_254_740_991_u64,
        example = 800)]
    amount: Option<Box<RawValue>>,
}

problems!(ConfirmProblems: InvalidRequest, InvalidAmount, HoldNotFound, HoldNotPending,
    BalanceLimitExceeded, PayloadTooLarge, UnsupportedMediaType, ServiceUnavailable,
    Unauthorized, RequestTimeout);

/// Confirm a hold
///
/// Moves the held money, all of it or `amount` of it, and releases the rest: out of the
/// wallet for a pending withdrawal, to the destination for a pending transfer. Answered once
/// durable. A repeat of the same confirmation gets the same answer with
/// `Idempotent-Replayed: true`; any other decision on a hold that is no longer pending (it was
/// confirmed, voided or expired) is `409 HOLD_NOT_PENDING`. A transfer whose destination would
/// pass the balance limit is `409 BALANCE_LIMIT_EXCEEDED`, and the hold stays pending.
#[utoipa::path(
    post,
    path = "/api/v1/holds/{holdId}/confirm",
    operation_id = "confirmHold",
    tag = "holds",
    params(("holdId" = Uuid, Path, description = "The hold",
        example = json!(EXAMPLE_OPERATION))),
    request_body(
        content = Option<ConfirmHold>,
        description = "Optional; an empty body confirms the whole hold",
        content_type = "application/json",
    ),
    responses(
        (status = 200, description = "Confirmed", body = HoldJson,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when this answers an earlier identical confirmation"))),
        ConfirmProblems,
    )
)]
async fn confirm(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    OptionalJsonBody(body): OptionalJsonBody<ConfirmHold>,
) -> Result<Response, ApiError> {
    let amount = body
        .and_then(|body| body.amount)
        .map(|raw| parse_amount(&raw))
        .transpose()?;
    let decision = confirmation(terms(&state, hold_id(path)?).await?, amount)?;
    submit(&state.ledger, "CONFIRM", decision).await
}

/// Confirming `hold` for `amount`, or for all of it.
pub(super) fn confirmation(
    hold: HoldTerms,
    amount: Option<Amount>,
) -> Result<HoldDecision, ApiError> {
    HoldDecision::confirm(hold, amount)
        .map_err(|error| ApiError::new(ErrorCode::InvalidAmount, error.to_string()))
}

/// Body of a void: nothing, or an empty object.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VoidHold {}

problems!(VoidProblems: InvalidRequest, HoldNotFound, HoldNotPending, PayloadTooLarge,
    UnsupportedMediaType, ServiceUnavailable, Unauthorized, RequestTimeout);

/// Void a hold
///
/// Releases all of the held money; the balance stays as it was. A repeat gets the same
/// answer with `Idempotent-Replayed: true`; a hold that was confirmed or expired is
/// `409 HOLD_NOT_PENDING`.
#[utoipa::path(
    post,
    path = "/api/v1/holds/{holdId}/void",
    operation_id = "voidHold",
    tag = "holds",
    params(("holdId" = Uuid, Path, description = "The hold",
        example = json!(EXAMPLE_OPERATION))),
    request_body(
        content = Option<VoidHold>,
        description = "Optional and empty",
        content_type = "application/json",
    ),
    responses(
        (status = 200, description = "Voided", body = HoldJson,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when this answers an earlier void"))),
        VoidProblems,
    )
)]
async fn void(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    OptionalJsonBody(_body): OptionalJsonBody<VoidHold>,
) -> Result<Response, ApiError> {
    let decision = HoldDecision::void(terms(&state, hold_id(path)?).await?);
    submit(&state.ledger, "VOID", decision).await
}
