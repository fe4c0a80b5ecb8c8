//! The HTTP API: one router per resource, merged here, with problem+json for every error.

mod error;
mod extract;
mod health;
mod operations;
mod wallets;

pub use error::ApiError;

use crate::ledger::Ledger;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use sqlx::PgPool;

/// Largest accepted request body. An operation is under 200 bytes of JSON.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every handler can reach: the read pool and the write path.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub ledger: Ledger,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(wallets::router())
        .merge(operations::router())
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
