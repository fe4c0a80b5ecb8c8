//! Health checks for orchestrators: alive means the process answers, ready means it can
//! reach the database (migrations ran before the listener opened).

use super::AppState;
use super::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "readiness check failed");
            ApiError::Unavailable
        })?;
    Ok(Json(json!({ "status": "ok" })))
}
