//! Health checks for orchestrators: alive means the process answers, ready means it can
//! serve: the database answers and holds every migration this binary embeds.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::openapi::problems;
use crate::store;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// A passing probe.
#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

const OK: Health = Health { status: "ok" };

/// Liveness
///
/// The process answers. Restart it when this fails.
#[utoipa::path(get, path = "/health/live", operation_id = "live", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
async fn live() -> Json<Health> {
    Json(OK)
}

problems!(ReadyProblems: ServiceUnavailable);

/// Readiness
///
/// The database answers and every migration of this version is applied. Send no traffic
/// while this fails.
#[utoipa::path(get, path = "/health/ready", operation_id = "ready", tag = "health",
    responses((status = 200, description = "Ready", body = Health), ReadyProblems))]
async fn ready(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match store::migrations_applied(&state.pool).await {
        Ok(true) => Ok(Json(OK)),
        Ok(false) => {
            tracing::warn!("readiness check failed: database migrations are missing");
            Err(ApiError::from(ErrorCode::ServiceUnavailable))
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(ApiError::from(ErrorCode::ServiceUnavailable))
        }
    }
}
