//! The HTTP API: one router per resource, merged here, with problem+json for every error,
//! an OpenAPI description generated from the same routes, and per-request logs and metrics.

mod auth;
mod batches;
mod error;
mod extract;
mod guard;
mod health;
mod holds;
mod observe;
mod openapi;
mod operations;
mod serve;
mod transfers;
mod transport_errors;
mod wallets;
mod writes;

pub use auth::ApiTokens;
pub use error::{ApiError, ErrorCode};
pub use serve::{ConnectionLimits, serve};
pub use writes::record_data;

use crate::ledger::Ledger;
use crate::reader::BalanceReader;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// What every handler can reach, shared: axum clones the state for every request, and this
/// way that is one reference count rather than one per handle inside.
pub type AppState = Arc<Shared>;

/// What every handler can reach: the read pool, the write path and the limits.
pub struct Shared {
    pub pool: PgPool,
    pub ledger: Ledger,
    pub reader: BalanceReader,
    /// Largest history page a client may ask for.
    pub max_page_size: u32,
    /// Most items in one batch.
    pub max_batch_items: usize,
}

/// Request-level limits and access rules, applied to every route.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Largest request body; an operation is under 200 bytes of JSON.
    pub max_body_bytes: usize,
    /// Largest body of a batch, which carries up to the most items of a batch.
    pub max_batch_body_bytes: usize,
    /// Time to receive a request and answer it. Longer than the ledger's deadline, so a
    /// write waiting for the database gets the ledger's 503 first; what it catches is a
    /// client that trickles its body.
    pub request_time_limit: Duration,
    pub tokens: ApiTokens,
}

pub fn router(state: AppState, policy: HttpPolicy) -> Router {
    let (api, description) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(wallets::router())
        .merge(operations::router())
        .merge(transfers::router())
        .merge(holds::router())
        .merge(batches::router(policy.max_batch_body_bytes))
        .merge(health::router())
        .split_for_parts();
    let router = api
        .merge(openapi::swagger_ui(description))
        .fallback(|| async { ApiError::from(ErrorCode::NotFound) })
        .method_not_allowed_fallback(|| async { ApiError::from(ErrorCode::MethodNotAllowed) })
        .layer(DefaultBodyLimit::max(policy.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Arc::new(guard::Gate {
                limits: guard::BodyLimits {
                    default: policy.max_body_bytes,
                    batch: policy.max_batch_body_bytes,
                },
                tokens: policy.tokens,
                time_limit: policy.request_time_limit,
            }),
            guard::admit,
        ));
    observe::layer(router).with_state(state)
}
