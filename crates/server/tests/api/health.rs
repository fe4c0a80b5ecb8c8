//! Health probes and request ids.

use crate::helpers::{spawn_app, status_and_body};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_migrated_service_is_alive_and_ready() {
    let app = spawn_app().await;
    for probe in ["/health/live", "/health/ready"] {
        let (status, body) = status_and_body(app.get(probe).await).await;
        assert_eq!(status, StatusCode::OK, "{probe}");
        assert_eq!(body, json!({"status": "ok"}), "{probe}");
    }
}

#[tokio::test]
async fn ready_fails_while_a_migration_is_missing_but_live_does_not() {
    let app = spawn_app().await;
    let db = app.db().await;
    let (version,): (i64,) = sqlx::query_as("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(version)
        .execute(&db)
        .await
        .unwrap();

    let response = app.get("/health/ready").await;
    assert_eq!(response.headers()[RETRY_AFTER], "1");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);

    sqlx::query("UPDATE _sqlx_migrations SET success = true WHERE version = $1")
        .bind(version)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn ready_fails_when_the_migrations_table_is_gone() {
    let app = spawn_app().await;
    sqlx::query("DROP TABLE _sqlx_migrations")
        .execute(&app.db().await)
        .await
        .unwrap();
    let (status, body) = status_and_body(app.get("/health/ready").await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn every_response_gets_a_new_request_id_unless_the_client_sent_one() {
    let app = spawn_app().await;
    let id = |response: &reqwest::Response| {
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let first = app.get("/health/live").await;
    let second = app
        .get(&format!("/api/v1/wallets/{}", Uuid::new_v4()))
        .await;
    assert_eq!(second.status(), StatusCode::NOT_FOUND);
    let unrouted = app.get("/no/such/path").await;
    assert_eq!(unrouted.status(), StatusCode::NOT_FOUND);
    let ids = [id(&first), id(&second), id(&unrouted)];
    for generated in &ids {
        assert!(Uuid::try_parse(generated).is_ok(), "{generated} is a UUID");
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);

    let chosen = app
        .client
        .post(app.url("/api/v1/wallet"))
        .header("x-request-id", "client-chosen-42")
        .json(&json!({"walletId": Uuid::new_v4(), "operationType": "DEPOSIT", "amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::OK);
    assert_eq!(id(&chosen), "client-chosen-42");
}
