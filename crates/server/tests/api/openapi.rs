//! The OpenAPI description and Swagger UI: the description lists exactly the API, every
//! route it serves is described, every method it does not describe is refused, and its
//! examples are the bodies the API really sends. What the description says is checked on the
//! router in process; what the API sends, on a server with a database.

use crate::helpers::reply::IntoReply;
use crate::helpers::router::router;
use crate::helpers::{
    Reply, assert_uuid, operation_body, pending, spawn_app, status_and_body, transfer_body,
};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

const DESCRIPTION: &str = "/api-docs/openapi.json";

/// The description, from the answer to `GET /api-docs/openapi.json`.
async fn description(response: impl IntoReply) -> Value {
    let reply = Reply::of(response).await;
    assert_eq!(reply.status, StatusCode::OK);
    serde_json::from_slice(&reply.body).expect("the description is JSON")
}

/// The documented methods of every path.
fn documented(spec: &Value) -> BTreeMap<String, BTreeSet<String>> {
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_string())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Every operation of the description, as (path, method, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, methods) in documented(spec) {
        for method in methods {
            all.push((
                path.clone(),
                method.clone(),
                spec["paths"][&path][&method].clone(),
            ));
        }
    }
    all
}

#[tokio::test]
async fn the_description_is_openapi_3_1_and_lists_exactly_the_api_of_the_design() {
    let spec = description(router().get(DESCRIPTION).await).await;
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["info"]["title"], "Wallet API");

    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("/api/v1/wallet", "post"),
        ("/api/v1/transfers", "post"),
        ("/api/v1/transfers/{transferId}", "get"),
        ("/api/v1/holds/{holdId}", "get"),
        ("/api/v1/holds/{holdId}/confirm", "post"),
        ("/api/v1/holds/{holdId}/void", "post"),
        ("/api/v1/batches", "post"),
        ("/api/v1/wallets", "post"),
        ("/api/v1/wallets/{walletId}", "get"),
        ("/api/v1/wallets/{walletId}/operations", "get"),
        ("/api/v1/wallets/{walletId}/operations/{operationId}", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
    ]
    .into_iter()
    .map(|(path, method)| (path.to_owned(), BTreeSet::from([method.to_owned()])))
    .collect();
    assert_eq!(documented(&spec), expected);
}

#[tokio::test]
async fn a_method_is_routed_on_a_documented_path_exactly_when_it_is_documented() {
    let router = router();
    let spec = description(router.get(DESCRIPTION).await).await;
    // Routing does not depend on whether the wallet, the operation, the transfer or the hold
    // exists.
    let (wallet, operation, transfer) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let hold = Uuid::new_v4();

    for (path, methods) in documented(&spec) {
        let target = path
            .replace("{walletId}", &wallet.to_string())
            .replace("{operationId}", &operation.to_string())
            .replace("{transferId}", &transfer.to_string())
            .replace("{holdId}", &hold.to_string());
        for method in METHODS {
            let method_name = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = router.call(method_name, &target).await;
            let routed = response.status != StatusCode::METHOD_NOT_ALLOWED;
            assert_eq!(
                routed,
                methods.contains(method),
                "{method} {path} answered {}",
                response.status
            );
            if !routed {
                assert_eq!(response.json()["code"], "METHOD_NOT_ALLOWED");
            }
        }
    }
}

#[tokio::test]
async fn every_reference_in_the_description_resolves() {
    let spec = description(router().get(DESCRIPTION).await).await;
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference} is not local"));
        assert!(spec.pointer(pointer).is_some(), "{reference} resolves");
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_error_codes_are_those_of_the_design() {
    let spec = description(router().get(DESCRIPTION).await).await;
    let codes: BTreeSet<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let design = BTreeSet::from([
        "INVALID_REQUEST",
        "INVALID_AMOUNT",
        "SAME_WALLET",
        "WALLET_NOT_FOUND",
        "OPERATION_NOT_FOUND",
        "TRANSFER_NOT_FOUND",
        "HOLD_NOT_FOUND",
        "INSUFFICIENT_FUNDS",
        "BALANCE_LIMIT_EXCEEDED",
        "WALLET_ALREADY_EXISTS",
        "HOLD_NOT_PENDING",
        "LINKED_ITEM_FAILED",
        "IDEMPOTENCY_KEY_REUSED",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "SERVICE_UNAVAILABLE",
        // Not in the design's table: request heads refused before routing.
        "URI_TOO_LONG",
        "HEADERS_TOO_LARGE",
        // Not in the design's table: optional bearer tokens, and a body that never arrives.
        "UNAUTHORIZED",
        "REQUEST_TIMEOUT",
        // Not in the design's table: a bug in the service, never an answer to bad input.
        "INTERNAL_ERROR",
    ]);
    assert_eq!(codes, design);
}

#[tokio::test]
async fn every_error_response_is_a_problem_with_an_example_of_each_code() {
    let spec = description(router().get(DESCRIPTION).await).await;
    let mut documented_codes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();

    for (path, method, operation) in operations(&spec) {
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} documents its success"
        );
        for (status, response) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
            let content = &response["content"]["application/problem+json"];
            assert_eq!(
                content["schema"]["$ref"], "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
            let examples = content["examples"].as_object().unwrap();
            assert!(
                !examples.is_empty(),
                "{method} {path} {status} has examples"
            );
            for (code, example) in examples {
                assert_eq!(example["value"]["code"], code.as_str());
                assert_eq!(example["value"]["status"].to_string(), *status);
                documented_codes
                    .entry(format!("{method} {path}"))
                    .or_default()
                    .insert(code.clone());
            }
            if status == "503" {
                assert!(response["headers"]["Retry-After"].is_object());
            }
        }
    }

    let codes = |list: &[&str]| list.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>();
    let unavailable = "SERVICE_UNAVAILABLE";
    let expected = BTreeMap::from([
        (
            "post /api/v1/wallet".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "INVALID_AMOUNT",
                "WALLET_NOT_FOUND",
                "INSUFFICIENT_FUNDS",
                "BALANCE_LIMIT_EXCEEDED",
                "IDEMPOTENCY_KEY_REUSED",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                unavailable,
                "UNAUTHORIZED",
                "REQUEST_TIMEOUT",
            ]),
        ),
        (
            "post /api/v1/transfers".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "INVALID_AMOUNT",
                "SAME_WALLET",
                "WALLET_NOT_FOUND",
                "INSUFFICIENT_FUNDS",
                "BALANCE_LIMIT_EXCEEDED",
                "IDEMPOTENCY_KEY_REUSED",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                unavailable,
                "UNAUTHORIZED",
                "REQUEST_TIMEOUT",
            ]),
        ),
        (
            "get /api/v1/transfers/{transferId}".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "TRANSFER_NOT_FOUND",
                unavailable,
                "UNAUTHORIZED",
            ]),
        ),
        (
            "get /api/v1/holds/{holdId}".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "HOLD_NOT_FOUND",
                unavailable,
                "UNAUTHORIZED",
            ]),
        ),
        (
            "post /api/v1/holds/{holdId}/confirm".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "INVALID_AMOUNT",
                "HOLD_NOT_FOUND",
                "HOLD_NOT_PENDING",
                "BALANCE_LIMIT_EXCEEDED",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                unavailable,
                "UNAUTHORIZED",
                "REQUEST_TIMEOUT",
            ]),
        ),
        (
            "post /api/v1/holds/{holdId}/void".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "HOLD_NOT_FOUND",
                "HOLD_NOT_PENDING",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                unavailable,
                "UNAUTHORIZED",
                "REQUEST_TIMEOUT",
            ]),
        ),
        (
            // Whole-batch problems; each item's own answer is inside the 200.
            "post /api/v1/batches".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                unavailable,
                "UNAUTHORIZED",
                "REQUEST_TIMEOUT",
            ]),
        ),
        (
            "post /api/v1/wallets".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "WALLET_ALREADY_EXISTS",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                unavailable,
                "UNAUTHORIZED",
                "REQUEST_TIMEOUT",
            ]),
        ),
        (
            "get /api/v1/wallets/{walletId}".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "WALLET_NOT_FOUND",
                unavailable,
                "UNAUTHORIZED",
            ]),
        ),
        (
            "get /api/v1/wallets/{walletId}/operations".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "WALLET_NOT_FOUND",
                unavailable,
                "UNAUTHORIZED",
            ]),
        ),
        (
            "get /api/v1/wallets/{walletId}/operations/{operationId}".to_owned(),
            codes(&[
                "INVALID_REQUEST",
                "OPERATION_NOT_FOUND",
                unavailable,
                "UNAUTHORIZED",
            ]),
        ),
        ("get /health/ready".to_owned(), codes(&[unavailable])),
    ]);
    assert_eq!(documented_codes, expected);
}

/// The documented example of `code` in the `status` response of `method path`.
fn example(spec: &Value, path: &str, method: &str, status: &str, code: &str) -> Value {
    spec["paths"][path][method]["responses"][status]["content"]["application/problem+json"]
        ["examples"][code]["value"]
        .clone()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn documented_examples_are_the_bodies_the_api_sends() {
    let app = spawn_app().await;
    let spec = description(app.get(DESCRIPTION).await).await;

    let (status, body) = status_and_body(
        app.get(&format!("/api/v1/wallets/{}", Uuid::new_v4()))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let documented = example(
        &spec,
        "/api/v1/wallets/{walletId}",
        "get",
        "404",
        "WALLET_NOT_FOUND",
    );
    // The problem names the wallet, so only the shape and the fixed fields can match.
    assert_eq!(keys(&body), keys(&documented));
    for field in ["type", "title", "status", "code"] {
        assert_eq!(body[field], documented[field], "{field}");
    }

    // A rejection names the operation, so only the shape can match.
    let wallet = app.funded_wallet(1).await;
    let (status, body) = status_and_body(app.withdraw(wallet, 2).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let documented = example(&spec, "/api/v1/wallet", "post", "409", "INSUFFICIENT_FUNDS");
    assert_eq!(keys(&body), keys(&documented));
    for field in ["type", "title", "status", "detail", "code"] {
        assert_eq!(body[field], documented[field], "{field}");
    }

    let (status, body) = status_and_body(
        app.client
            .post(app.url("/api/v1/wallet"))
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let documented = example(
        &spec,
        "/api/v1/wallet",
        "post",
        "415",
        "UNSUPPORTED_MEDIA_TYPE",
    );
    assert_eq!(body, documented);
}

/// Checks that `body` has every required property of `schema` and no undocumented one.
fn assert_matches_schema(spec: &Value, schema: &str, body: &Value) {
    let schema = &spec["components"]["schemas"][schema];
    let properties = keys(&schema["properties"]);
    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let actual = keys(body);
    assert!(
        actual.is_subset(&properties),
        "{actual:?} within {properties:?}"
    );
    assert!(
        required.is_subset(&actual),
        "{required:?} within {actual:?}"
    );
}

#[tokio::test]
async fn success_bodies_match_their_documented_schemas() {
    let app = spawn_app().await;
    let spec = description(app.get(DESCRIPTION).await).await;
    let wallet = app.funded_wallet(0).await;

    let (_, operation) = status_and_body(app.deposit(wallet, 5).await).await;
    assert_matches_schema(&spec, "Operation", &operation);
    let (_, rejected) = status_and_body(app.withdraw(wallet, 50).await).await;
    assert_matches_schema(&spec, "Problem", &rejected);
    let (_, balance) = status_and_body(app.get(&format!("/api/v1/wallets/{wallet}")).await).await;
    assert_matches_schema(&spec, "Wallet", &balance);
    let (_, page) = status_and_body(
        app.get(&format!("/api/v1/wallets/{wallet}/operations"))
            .await,
    )
    .await;
    assert_matches_schema(&spec, "OperationPage", &page);
    let rejected_record = &page["items"][0];
    assert_eq!(rejected_record["status"], "REJECTED");
    assert_matches_schema(&spec, "Operation", rejected_record);
    let (_, health) = status_and_body(app.get("/health/ready").await).await;
    assert_matches_schema(&spec, "Health", &health);
    let created = app
        .client
        .post(app.url("/api/v1/wallets"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, created) = status_and_body(created).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_matches_schema(&spec, "Wallet", &created);
}

/// The schema `reference` points to (`{"$ref": "#/components/schemas/..."}`), or the schema
/// itself when it is inline.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap();
            resolve(spec, spec.pointer(pointer).unwrap())
        }
        None => schema,
    }
}

/// Every value a string schema allows, through references and `oneOf`/`anyOf`/`allOf`.
fn enum_values(spec: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(spec, schema);
    let mut values: BTreeSet<String> = schema["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    for combinator in ["oneOf", "anyOf", "allOf"] {
        for part in schema[combinator].as_array().into_iter().flatten() {
            values.extend(enum_values(spec, part));
        }
    }
    values
}

/// The name of the schema of the `status` JSON body of `method path`.
fn response_schema(spec: &Value, path: &str, method: &str, status: &str) -> String {
    let schema =
        &spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    let reference = schema["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path} {status} refers to a schema: {schema}"));
    reference
        .strip_prefix("#/components/schemas/")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn history_items_are_described_with_the_transfer_types_and_fields() {
    let spec = description(router().get(DESCRIPTION).await).await;
    let operation = &spec["components"]["schemas"]["Operation"];

    let types = enum_values(&spec, &operation["properties"]["operationType"]);
    for kind in ["DEPOSIT", "WITHDRAW", "TRANSFER_OUT", "TRANSFER_IN"] {
        assert!(types.contains(kind), "{kind} in {types:?}");
    }
    let properties = keys(&operation["properties"]);
    for field in ["transferId", "counterpartyWalletId"] {
        assert!(properties.contains(field), "{field} in {properties:?}");
    }
}

#[tokio::test]
async fn transfer_bodies_match_their_documented_schemas_and_examples() {
    let app = spawn_app().await;
    let spec = description(app.get(DESCRIPTION).await).await;
    let (from, to) = (app.funded_wallet(10).await, app.funded_wallet(0).await);
    let transfers = "/api/v1/transfers";

    let posted = app
        .transfer(&json!({"fromWalletId": from, "toWalletId": to, "amount": 4}))
        .await;
    let (status, record) = status_and_body(posted).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_matches_schema(
        &spec,
        &response_schema(&spec, transfers, "post", "200"),
        &record,
    );
    let id = record["transferId"].as_str().unwrap();
    let (status, read) = status_and_body(app.get(&format!("{transfers}/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let path = "/api/v1/transfers/{transferId}";
    assert_matches_schema(&spec, &response_schema(&spec, path, "get", "200"), &read);
    for leg in [&app.history(from).await[0], &app.history(to).await[0]] {
        assert_matches_schema(&spec, "Operation", leg);
    }

    let rejected = app
        .transfer(&json!({"fromWalletId": from, "toWalletId": to, "amount": 99}))
        .await;
    let (status, problem) = status_and_body(rejected).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_matches_schema(&spec, "Problem", &problem);
    let documented = example(&spec, transfers, "post", "409", "INSUFFICIENT_FUNDS");
    assert_eq!(keys(&problem), keys(&documented));
    let rejected_id = problem["transferId"].as_str().unwrap();
    let (_, rejected_record) =
        status_and_body(app.get(&format!("{transfers}/{rejected_id}")).await).await;
    assert_matches_schema(
        &spec,
        &response_schema(&spec, path, "get", "200"),
        &rejected_record,
    );

    // Problems that name nothing stored are the documented examples exactly.
    let same = app
        .transfer(&json!({"fromWalletId": from, "toWalletId": from, "amount": 1}))
        .await;
    let (status, body) = status_and_body(same).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        example(&spec, transfers, "post", "400", "SAME_WALLET")
    );
    let unknown = app.get(&format!("{transfers}/{}", Uuid::new_v4())).await;
    let (status, body) = status_and_body(unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body,
        example(&spec, path, "get", "404", "TRANSFER_NOT_FOUND")
    );
}

#[tokio::test]
async fn hold_bodies_match_their_documented_schemas() {
    let app = spawn_app().await;
    let spec = description(app.get(DESCRIPTION).await).await;
    let (from, to) = (app.funded_wallet(100).await, app.funded_wallet(0).await);
    let pending = |body: Value| pending(body, Some(600));

    let placed = app
        .operation(&pending(operation_body(from, "WITHDRAW", 10, None)))
        .await;
    let (status, record) = status_and_body(placed).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    let wallet_path = "/api/v1/wallet";
    let schema = response_schema(&spec, wallet_path, "post", "200");
    assert_matches_schema(&spec, &schema, &record);
    let withdrawal = assert_uuid(&record["holdId"]);
    let placed = app
        .transfer(&pending(transfer_body(from, to, 10, None)))
        .await;
    let (status, record) = status_and_body(placed).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    let schema = response_schema(&spec, "/api/v1/transfers", "post", "200");
    assert_matches_schema(&spec, &schema, &record);
    let transfer = assert_uuid(&record["transferId"]);

    let read = "/api/v1/holds/{holdId}";
    for hold in [withdrawal, transfer] {
        let record = app.hold(hold).await.json();
        assert_matches_schema(&spec, &response_schema(&spec, read, "get", "200"), &record);
    }
    let confirmed = app.confirm_hold(withdrawal, None).await.json();
    let confirm = "/api/v1/holds/{holdId}/confirm";
    let schema = response_schema(&spec, confirm, "post", "200");
    assert_matches_schema(&spec, &schema, &confirmed);
    let voided = app.void_hold(transfer).await.json();
    let schema = response_schema(&spec, "/api/v1/holds/{holdId}/void", "post", "200");
    assert_matches_schema(&spec, &schema, &voided);
    for entry in app.history(from).await {
        assert_matches_schema(&spec, "Operation", &entry);
    }
    let (_, wallet) = status_and_body(app.get(&format!("/api/v1/wallets/{from}")).await).await;
    assert_matches_schema(&spec, "Wallet", &wallet);

    let not_pending = app.void_hold(withdrawal).await;
    assert_eq!(
        not_pending.status,
        StatusCode::CONFLICT,
        "{}",
        not_pending.text()
    );
    let documented = example(&spec, confirm, "post", "409", "HOLD_NOT_PENDING");
    assert_eq!(keys(&not_pending.json()), keys(&documented));
    let unknown = app.hold(Uuid::new_v4()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    let documented = example(&spec, read, "get", "404", "HOLD_NOT_FOUND");
    assert_eq!(keys(&unknown.json()), keys(&documented));
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_and_loads_the_description() {
    let router = router();
    let page = router.get("/swagger-ui/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header(CONTENT_TYPE).unwrap().starts_with("text/html"));
    assert!(page.text().contains("swagger-ui"));

    let bundle = router.get("/swagger-ui/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status, StatusCode::OK);
    assert!(bundle.body.len() > 100_000, "the UI's code is vendored");

    let initializer = router.get("/swagger-ui/swagger-initializer.js").await;
    assert_eq!(initializer.status, StatusCode::OK);
    assert!(initializer.text().contains(DESCRIPTION));
}

/// The API's routes come from `utoipa_axum::routes!`, which takes each route from its
/// handler's description; a route added any other way would be served undescribed.
#[test]
fn api_routes_are_registered_only_from_their_descriptions() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        // Unit tests may start servers of their own.
        let source = source.split("#[cfg(test)]").next().unwrap();
        for bypass in [
            ".route(",
            ".route_service(",
            ".nest(",
            ".nest_service(",
            "routing::",
        ] {
            assert!(
                !source.contains(bypass),
                "{} registers a route with `{bypass}`: use `routes!` and `#[utoipa::path]`",
                path.display()
            );
        }
        files += 1;
    }
    assert!(files > 0);
}
