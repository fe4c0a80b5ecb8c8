//! `/api/v1/wallets`: create a wallet, read its balance.

use super::AppState;
use super::error::ApiError;
use super::extract::{OptionalJsonBody, parse_id};
use crate::domain::WalletId;
use crate::store::reads::{self, Wallet};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/wallets", post(create))
        .route("/api/v1/wallets/{wallet_id}", get(balance))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateWallet {
    wallet_id: Option<Uuid>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WalletJson {
    wallet_id: String,
    balance: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Wallet> for WalletJson {
    fn from(wallet: Wallet) -> Self {
        Self {
            wallet_id: wallet.id.to_string(),
            balance: wallet.balance.get(),
            created_at: wallet.created_at,
            updated_at: wallet.updated_at,
        }
    }
}

async fn create(
    State(state): State<AppState>,
    OptionalJsonBody(body): OptionalJsonBody<CreateWallet>,
) -> Result<Response, ApiError> {
    let id = body
        .and_then(|b| b.wallet_id)
        .map_or_else(WalletId::new_random, WalletId::from);
    let wallet = reads::create_wallet(&state.pool, id)
        .await?
        .ok_or(ApiError::WalletAlreadyExists)?;
    let location = format!("/api/v1/wallets/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(WalletJson::from(wallet)),
    )
        .into_response())
}

async fn balance(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WalletJson>, ApiError> {
    let id: WalletId = parse_id(&path?.0, "walletId")?;
    let wallet = reads::wallet(&state.pool, id)
        .await?
        .ok_or(ApiError::WalletNotFound)?;
    Ok(Json(wallet.into()))
}
