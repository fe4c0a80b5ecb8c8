//! The admin listener: Prometheus metrics and CPU profiles, on their own address so they can
//! stay on loopback or a private network while the API is public.

mod profile;

use crate::ledger::Ledger;
use crate::telemetry::metric;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often histogram samples are folded into their buckets when nobody scrapes, so that
/// memory stays flat.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// What the admin endpoints read: the recorder, and the pool and queues they sample at each
/// scrape.
#[derive(Clone)]
pub struct AdminState {
    pub prometheus: PrometheusHandle,
    pub pool: PgPool,
    pub ledger: Ledger,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/debug/pprof/profile", get(profile::pprof))
        .route("/debug/pprof/flamegraph", get(profile::flamegraph))
        .with_state(state)
}

/// Serves `router` until `shutdown` completes, keeping the recorder's memory bounded.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    prometheus: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = async {
        let mut tick = tokio::time::interval(UPKEEP_PERIOD);
        loop {
            tick.tick().await;
            prometheus.run_upkeep();
        }
    };
    tokio::select! {
        result = axum::serve(listener, router).with_graceful_shutdown(shutdown) => result,
        never = upkeep => never,
    }
}

/// Prometheus text format. Gauges of state that changes on every request (pool, queues)
/// are sampled here, at scrape time, rather than kept up to date on the hot path.
async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let idle = state.pool.num_idle();
    let in_use = (state.pool.size() as usize).saturating_sub(idle);
    metrics::gauge!(metric::DB_POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
    metrics::gauge!(metric::DB_POOL_CONNECTIONS, "state" => "in_use").set(in_use as f64);
    for (shard, depth) in state.ledger.queue_depths().enumerate() {
        metrics::gauge!(metric::LEDGER_QUEUE_DEPTH, "shard" => shard.to_string()).set(depth as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.prometheus.render(),
    )
}
