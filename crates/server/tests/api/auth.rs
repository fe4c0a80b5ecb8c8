//! Optional bearer tokens: with `WALLET_API_TOKENS` set, `/api/` needs one; health checks
//! and the documentation stay open. Refusals are checked on the router in process; what a
//! token lets through, on a real database.

use crate::helpers::router::{request, router_with};
use crate::helpers::{ServerProcess, spawn_app_with, status_and_body};
use axum::body::Body;
use axum::http::Method;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::json;
use uuid::Uuid;

/// `alpha` as itself and `beta` by its digest.
fn tokens() -> String {
    format!("alpha,sha256:{}", sha256_hex(b"beta"))
}

#[tokio::test]
async fn api_routes_need_a_configured_token_and_health_and_docs_do_not() {
    let tokens = tokens();
    let router = router_with(&["--api-tokens", &tokens]);
    let path = format!("/api/v1/wallets/{}", Uuid::new_v4());

    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("alpha"),
        Some("Basic YWxwaGE="),
    ] {
        let mut request = request(Method::GET, &path);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let response = router.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(response.header(WWW_AUTHENTICATE), Some("Bearer"));
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert_eq!(response.json()["code"], "UNAUTHORIZED");
    }

    let deposit = json!({"walletId": Uuid::new_v4(), "operationType": "DEPOSIT", "amount": 7});
    let refused = router
        .post_json("/api/v1/wallet", deposit.to_string())
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    for open in ["/health/live", "/api-docs/openapi.json", "/swagger-ui/"] {
        assert_eq!(router.get(open).await.status, StatusCode::OK, "{open}");
    }
    // Readiness needs the database, which this router cannot reach: it is not refused, it
    // is unavailable. The test below sees it ready on a real database.
    let ready = router.get("/health/ready").await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text()
    );
}

#[tokio::test]
async fn a_configured_token_opens_the_api() {
    let tokens = tokens();
    let app = spawn_app_with(&["--api-tokens", &tokens]).await;
    let wallet = Uuid::new_v4();
    let path = app.url(&format!("/api/v1/wallets/{wallet}"));

    let deposit = json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": 7});
    let refused = app
        .client
        .post(app.url("/api/v1/wallet"))
        .json(&deposit)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let accepted = app
        .client
        .post(app.url("/api/v1/wallet"))
        .bearer_auth("beta")
        .json(&deposit)
        .send()
        .await
        .unwrap();
    assert_eq!(
        accepted.status(),
        StatusCode::OK,
        "a token given by its digest works"
    );
    let read = app
        .client
        .get(&path)
        .bearer_auth("alpha")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["balance"], 7,
        "only the authenticated deposit was applied"
    );
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_token_digest_stops_the_start() {
    let mut server = ServerProcess::spawn_on_new_database(&["--api-tokens", "sha256:nothex"]);
    let status = server.exit_status().await;
    assert!(!status.success());
    assert!(
        server
            .output()
            .iter()
            .any(|line| line.contains("WALLET_API_TOKENS"))
    );
}

#[tokio::test]
async fn listening_beyond_loopback_without_tokens_is_warned_about() {
    let mut server = ServerProcess::start(&["--http-addr", "0.0.0.0:0"]).await;
    let warned = server
        .output()
        .iter()
        .any(|line| line.contains("WITHOUT authentication"));
    server.signal("TERM");
    server.exit_status().await;
    assert!(warned);
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
