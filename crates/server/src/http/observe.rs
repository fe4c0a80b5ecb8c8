//! What every request leaves behind: a request id, one log line and its metrics.

use crate::telemetry::metric;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics::Label;
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label of requests that matched no route, so that scanners probing random paths
/// cannot create a time series per path.
const UNMATCHED: &str = "unmatched";

/// Wraps `router` so that each request keeps the client's `x-request-id` or gets a new one,
/// returns it, logs one line when answered (inside a span that also tags every other log
/// line of the request), and is counted and timed.
pub fn layer<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    // The last layer added runs first: the id is set before the span that logs it.
    router
        .layer(middleware::from_fn(record_metrics))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = route(request.extensions().get::<MatchedPath>()),
        request_id,
    )
}

fn log_response<B>(response: &axum::http::Response<B>, latency: Duration, _: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

fn route(matched: Option<&MatchedPath>) -> &str {
    matched.map_or(UNMATCHED, MatchedPath::as_str)
}

/// The method label: the standard methods by name, anything else lumped together.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route(request.extensions().get::<MatchedPath>()).to_owned();
    let response = {
        let _in_flight = InFlight::start();
        next.run(request).await
    };
    let labels = vec![
        Label::new("method", method),
        Label::new("route", route),
        Label::new("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(metric::HTTP_REQUESTS, labels.iter()).increment(1);
    metrics::histogram!(metric::HTTP_DURATION, labels).record(started.elapsed());
    response
}

/// Counts a request as in flight until dropped, also when the client goes away mid-request.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(metric::HTTP_IN_FLIGHT).increment(1);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(metric::HTTP_IN_FLIGHT).decrement(1);
    }
}
