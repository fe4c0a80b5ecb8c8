//! The HTTP API: one router per resource, merged here, with problem+json for every error,
//! an OpenAPI description generated from the same routes, and per-request logs and metrics.

mod error;
mod extract;
mod health;
mod observe;
mod openapi;
mod operations;
mod wallets;

pub use error::ApiError;

use crate::ledger::{BalanceReader, Ledger};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Largest accepted request body. An operation is under 200 bytes of JSON.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every handler can reach: the read pool and the write path.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub ledger: Ledger,
    pub reader: BalanceReader,
}

pub fn router(state: AppState) -> Router {
    let (api, description) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(wallets::router())
        .merge(operations::router())
        .merge(health::router())
        .split_for_parts();
    let router = api
        .merge(openapi::swagger_ui(description))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    observe::layer(router).with_state(state)
}
