//! The API router in this process, without a socket or a database: each request goes to it
//! with `tower::ServiceExt::oneshot`. For the HTTP layer's own decisions (routing, content
//! types, body limits, malformed paths and headers, authentication, the OpenAPI description).

use super::reply::Reply;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use tower::ServiceExt;
use wallet_server::Config;

/// The router's database: nothing listens on port 1. A request that reached storage would
/// wait for it and be answered 503, so any other answer shows that the request was decided
/// before anything could be read or written, i.e. that no balance changed.
const NO_DATABASE: &str = "postgres://postgres@127.0.0.1:1/wallet";

/// The full API router on lazily connected handles.
pub struct TestRouter(Router);

/// The router with the default configuration.
pub fn router() -> TestRouter {
    router_with(&[])
}

/// The router with extra command-line flags. Must be called inside a Tokio runtime (the
/// ledger's writer tasks start with it, connecting only when a write arrives).
pub fn router_with(flags: &[&str]) -> TestRouter {
    let mut args = vec![
        "wallet-server",
        "--database-url",
        NO_DATABASE,
        // A request that does try the database gets its 503 quickly.
        "--db-acquire-timeout-ms",
        "200",
        "--request-timeout-ms",
        "500",
    ];
    args.extend_from_slice(flags);
    let config =
        Config::load(args.into_iter().map(Into::into).collect()).expect("valid test flags");
    TestRouter(wallet_server::app::lazy_router(&config).expect("the router builds"))
}

impl TestRouter {
    /// Sends `request` to a clone of the router and reads the answer whole.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .0
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        Reply::of(response).await
    }

    /// A request without a body.
    pub async fn call(&self, method: Method, path: &str) -> Reply {
        self.send(request(method, path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path).await
    }

    /// A POST of `body` as `application/json`.
    pub async fn post_json(&self, path: &str, body: impl Into<Body>) -> Reply {
        let request = request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap();
        self.send(request).await
    }
}

/// The start of a request to `path`, with the `Host` every HTTP/1.1 request carries, for
/// more headers of the test's choosing.
pub fn request(method: Method, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost")
}
