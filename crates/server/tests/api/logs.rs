//! The real binary's logs: one line per request with its id, route, status and latency, in
//! JSON or for people, and never a database password.

use crate::helpers::ServerProcess;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The log lines of `output` whose request span has `request_id`.
fn lines_of_request(output: &[String], request_id: &str) -> Vec<Value> {
    output
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("JSON: {line}")))
        .filter(|event| event["span"]["request_id"] == request_id)
        .collect()
}

#[tokio::test]
async fn each_request_is_logged_once_as_json_with_its_id_route_status_and_latency() {
    let mut server = ServerProcess::start(&[]).await;
    let client = Client::new();
    let wallet = Uuid::new_v4();
    let read = client
        .get(format!("http://{}/api/v1/wallets/{wallet}", server.addr()))
        .header("x-request-id", "log-probe-read")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::NOT_FOUND);
    let write = client
        .post(format!("http://{}/api/v1/wallet", server.addr()))
        .header("x-request-id", "log-probe-write")
        .json(&json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::OK);
    server.signal("TERM");
    assert!(server.exit_status().await.success());
    let output = server.output();

    for (id, method, route, status) in [
        ("log-probe-read", "GET", "/api/v1/wallets/{walletId}", 404),
        ("log-probe-write", "POST", "/api/v1/wallet", 200),
    ] {
        let lines = lines_of_request(&output, id);
        assert_eq!(lines.len(), 1, "one line for {id}: {lines:#?}");
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request");
        assert_eq!(line["span"]["method"], method);
        assert_eq!(line["span"]["route"], route);
        assert_eq!(line["status"], status);
        assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
        assert!(line["timestamp"].is_string());
    }
}

#[tokio::test]
async fn pretty_logs_put_each_request_on_one_line_without_colour_codes() {
    let mut server = ServerProcess::start(&["--log-format", "pretty"]).await;
    let response = Client::new()
        .get(format!("http://{}/health/live", server.addr()))
        .header("x-request-id", "pretty-probe")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.signal("TERM");
    assert!(server.exit_status().await.success());
    let output = server.output();

    let lines: Vec<_> = output
        .iter()
        .filter(|l| l.contains("pretty-probe"))
        .collect();
    assert_eq!(lines.len(), 1, "{output:#?}");
    for part in [
        r#"route="/health/live""#,
        "method=GET",
        "status=200",
        "latency_ms=",
    ] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
    assert!(output.iter().all(|line| !line.contains('\u{1b}')));
}

#[tokio::test]
async fn the_database_password_never_reaches_the_logs() {
    // A running server: its URL's password (if any) appears nowhere in its output.
    let mut server = ServerProcess::start(&[]).await;
    let url = server.database_url().to_owned();
    server.signal("TERM");
    assert!(server.exit_status().await.success());
    let output = server.output().join("\n");
    assert!(!output.contains(&url));
    let userinfo = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(userinfo, _)| userinfo);
    if let Some((_, password)) = userinfo.and_then(|u| u.split_once(':')) {
        assert!(!output.contains(&format!(":{password}@")));
    }

    // A server that cannot connect says so at each attempt and when it gives up, without
    // the password.
    let canary = "pw-canary-5f3a";
    let mut failing = ServerProcess::spawn(
        &format!("postgres://wallet:{canary}@127.0.0.1:1/wallet"),
        &["--db-startup-timeout", "1s"],
    );
    let status = failing.exit_status().await;
    assert!(!status.success());
    let output = failing.output().join("\n");
    assert!(output.contains("database not reachable yet"), "{output}");
    assert!(
        output.contains("cannot connect to the database"),
        "{output}"
    );
    assert!(!output.contains(canary), "{output}");
}
