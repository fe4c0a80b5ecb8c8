//! `/api/v1/wallets`: create a wallet, read its balance.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{OptionalJsonBody, parse_id};
use super::openapi::{EXAMPLE_WALLET, problems};
use crate::domain::Wallet;
use crate::domain::WalletId;
use crate::store::wallets;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(balance))
}

/// Body of `POST /api/v1/wallets`; the body itself is optional.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateWallet {
    /// The new wallet's id; a new time-ordered one (UUID version 7) when missing.
    #[schema(value_type = Option<Uuid>, example = json!(EXAMPLE_WALLET))]
    wallet_id: Option<WalletId>,
}

/// A wallet and its balance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Wallet)]
struct WalletJson {
    #[schema(example = json!(EXAMPLE_WALLET))]
    wallet_id: Uuid,
    /// In minor units, `0 ..= 9007199254740991`.
    #[schema(example = 1000, maximum = 9_007_199_254_740_991_u64)]
    balance: u64,
    /// The part of the balance that pending holds reserve.
    #[schema(example = 0, maximum = 9_007_199_254_740_991_u64)]
    held: u64,
    /// `balance - held`: what a withdrawal, a transfer or a new hold may take.
    #[schema(example = 1000, maximum = 9_007_199_254_740_991_u64)]
    available: u64,
    #[schema(example = "2026-01-01T00:00:00Z")]
    created_at: DateTime<Utc>,
    /// When the balance or the held amount last changed.
    #[schema(example = "2026-01-01T00:00:00Z")]
    updated_at: DateTime<Utc>,
}

impl From<Wallet> for WalletJson {
    fn from(wallet: Wallet) -> Self {
        Self {
            wallet_id: wallet.id.into(),
            balance: wallet.funds.balance().get(),
            held: wallet.funds.held().get(),
            available: wallet.funds.available().get(),
            created_at: wallet.created_at,
            updated_at: wallet.updated_at,
        }
    }
}

problems!(CreateProblems: InvalidRequest, PayloadTooLarge, UnsupportedMediaType,
    WalletAlreadyExists, ServiceUnavailable, Unauthorized, RequestTimeout);

/// Create a wallet
///
/// Creates an empty wallet, with the given id or a new time-ordered one. A deposit to an unknown
/// wallet creates it too, so this call is optional.
#[utoipa::path(
    post,
    path = "/api/v1/wallets",
    operation_id = "createWallet",
    tag = "wallets",
    request_body(
        content = Option<CreateWallet>,
        description = "Optional; an empty body creates a wallet with a new time-ordered id",
        content_type = "application/json",
    ),
    responses(
        (status = 201, description = "Created", body = WalletJson,
            headers(("Location" = String, description = "The new wallet's URL"))),
        CreateProblems,
    )
)]
async fn create(
    State(state): State<AppState>,
    OptionalJsonBody(body): OptionalJsonBody<CreateWallet>,
) -> Result<Response, ApiError> {
    let id = body
        .and_then(|b| b.wallet_id)
        .unwrap_or_else(WalletId::generate);
    let wallet = wallets::create(&state.pool, id)
        .await?
        .ok_or(ErrorCode::WalletAlreadyExists)?;
    let location = format!("/api/v1/wallets/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(WalletJson::from(wallet)),
    )
        .into_response())
}

problems!(BalanceProblems: InvalidRequest, WalletNotFound, ServiceUnavailable, Unauthorized);

/// Read a balance
///
/// Read straight from the database: a balance read after a successful write shows it.
#[utoipa::path(
    get,
    path = "/api/v1/wallets/{walletId}",
    operation_id = "getWallet",
    tag = "wallets",
    params(("walletId" = Uuid, Path, description = "The wallet",
        example = json!(EXAMPLE_WALLET))),
    responses(
        (status = 200, description = "The wallet", body = WalletJson),
        BalanceProblems,
    )
)]
async fn balance(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WalletJson>, ApiError> {
    let id: WalletId = parse_id(&path?.0, "walletId")?;
    let wallet = state
        .reader
        .wallet(id)
        .await?
        .ok_or_else(|| ApiError::wallet_not_found(id))?;
    Ok(Json(wallet.into()))
}
