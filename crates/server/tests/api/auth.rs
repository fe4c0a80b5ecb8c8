//! Optional bearer tokens: with `WALLET_API_TOKENS` set, `/api/` needs one; health checks
//! and the documentation stay open.

use crate::helpers::{ServerProcess, spawn_app_with, status_and_body};
use reqwest::StatusCode;
use uuid::Uuid;

#[tokio::test]
async fn api_routes_need_a_configured_token_and_health_and_docs_do_not() {
    let beta = sha256_hex(b"beta");
    let tokens = format!("alpha,sha256:{beta}");
    let app = spawn_app_with(&["--api-tokens", &tokens]).await;
    let wallet = Uuid::new_v4();
    let path = app.url(&format!("/api/v1/wallets/{wallet}"));

    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("alpha"),
        Some("Basic YWxwaGE="),
    ] {
        let mut request = app.client.get(&path);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(body["code"], "UNAUTHORIZED");
    }

    let deposit = serde_json::json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": 7});
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

    for open in [
        "/health/live",
        "/health/ready",
        "/api-docs/openapi.json",
        "/swagger-ui/",
    ] {
        assert_eq!(app.get(open).await.status(), StatusCode::OK, "{open}");
    }
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
