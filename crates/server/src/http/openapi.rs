//! The OpenAPI 3.1 description and Swagger UI.
//!
//! Routes are registered with `utoipa_axum::routes!`, which takes the path and the methods
//! from each handler's `#[utoipa::path]`: the router and the description come from the same
//! annotation and cannot drift apart. Error responses are rendered by [`ApiError::problem`],
//! the code that renders real ones, so every documented example is a body the API sends.

use super::batches;
use super::error::{ApiError, ErrorCode, Problem};
use crate::domain::{
    Amount, Balance, Funds, MAX_MONEY, OperationId, OperationKind, OperationRequest,
    TransferRequest, WalletId,
};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Type};
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;
use uuid::{Uuid, uuid};

/// Where the description is served; Swagger UI loads it from there.
pub const SPEC_PATH: &str = "/api-docs/openapi.json";
const SWAGGER_UI_PATH: &str = "/swagger-ui";

/// The wallet and the operation every example in the description talks about.
pub const EXAMPLE_WALLET: Uuid = uuid!("6f1d6c1e-6a43-4c55-9a55-6b1ad1d7c001");
pub const EXAMPLE_OPERATION: Uuid = uuid!("0b0f4c52-8f5e-4d7e-9a3e-2b7f8c1d9e10");
/// The other wallet of the example transfer.
pub const EXAMPLE_PAYEE: Uuid = uuid!("a3c5e7f9-1b2d-4e6f-8a0b-2c4d6e8f0a1b");
/// 2026-01-01T00:00:00Z.
const EXAMPLE_TIME: DateTime<Utc> = DateTime::from_timestamp_nanos(1_767_225_600_000_000_000);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wallet API",
        description = "Deposit to and withdraw from wallets identified by UUID, transfer \
            between them, hold money and confirm or release it later, and read balances and \
            history. Amounts are integers in minor units, from 1 to \
            9007199254740991 (2^53 - 1). Writes are idempotent when named by `operationId`, \
            `transferId` or an `Idempotency-Key` header, all in one namespace. Every error is an RFC 9457 problem \
            (`application/problem+json`) with a stable `code`; an unknown path is `404 \
            NOT_FOUND` and a method a path does not document is `405 METHOD_NOT_ALLOWED`. \
            Every response carries an `x-request-id` header: the one the request sent, or a \
            new one; it is in the service's log line for the request."
    ),
    tags(
        (name = "operations", description = "Deposits, withdrawals and every wallet's history"),
        (name = "transfers", description = "Money moved between wallets"),
        (name = "holds", description = "Money reserved by pending withdrawals and transfers: \
            confirm, void, or let expire"),
        (name = "batches", description = "Many operations, transfers and hold decisions in \
            one request, each decided alone or all together"),
        (name = "wallets", description = "Creating wallets and reading balances"),
        (name = "health", description = "Probes for orchestrators and load balancers"),
    ),
    components(schemas(Problem, ErrorCode, batches::Item))
)]
pub struct ApiDoc;

/// Serves `openapi` at [`SPEC_PATH`] and Swagger UI at `/swagger-ui/`, both from the binary
/// (the UI's files are vendored at build time), so the documentation works offline.
pub fn swagger_ui<S: Clone + Send + Sync + 'static>(
    openapi: utoipa::openapi::OpenApi,
) -> axum::Router<S> {
    SwaggerUi::new(SWAGGER_UI_PATH)
        .url(SPEC_PATH, openapi)
        .into()
}

/// The problem responses of an endpoint that can fail with `codes`, one per status, each
/// with the real body of every code as a named example, as `sample` renders it.
pub fn problem_responses(
    codes: &[ErrorCode],
    sample: fn(ErrorCode) -> ApiError,
) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for &code in codes {
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .push(code);
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let examples = codes.iter().map(|&code| {
                let error = sample(code);
                let example = ExampleBuilder::new()
                    .summary(error.detail())
                    .value(serde_json::to_value(error.problem()).ok())
                    .build();
                (code.name(), example)
            });
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .examples_from_iter(examples)
                .build();
            let names: Vec<_> = codes.iter().map(|&c| format!("`{}`", c.name())).collect();
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            let mut response = ResponseBuilder::new()
                .description(format!("{reason}: {}", names.join(", ")))
                .content("application/problem+json", content);
            if status == StatusCode::SERVICE_UNAVAILABLE.as_u16() {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Some(utoipa::openapi::schema::Object::with_type(
                            Type::Integer,
                        )))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            (status.to_string(), RefOr::T(response.build()))
        })
        .collect()
}

/// Declares `$name` as the documented problem responses of one endpoint, for
/// `#[utoipa::path(responses(..., $name))]`. The examples are rendered by [`sample`], or by
/// the endpoint's own function given before the codes.
macro_rules! problems {
    ($name:ident: $($code:ident),+ $(,)?) => {
        problems!($name, super::openapi::sample: $($code),+);
    };
    ($name:ident, $sample:path: $($code:ident),+ $(,)?) => {
        /// Problem responses of one endpoint, for its OpenAPI description.
        pub(super) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                super::openapi::problem_responses(&[$(super::error::ErrorCode::$code),+], $sample)
            }
        }
    };
}
pub(super) use problems;

/// An error with `code`, as a request about the example wallet would meet it. A code not
/// named here is shown with its default detail, so a new code needs nothing here.
pub fn sample(code: ErrorCode) -> ApiError {
    match code {
        ErrorCode::InvalidRequest => {
            ApiError::invalid_request("walletId must be a UUID, got \"42\"")
        }
        ErrorCode::WalletNotFound => ApiError::wallet_not_found(WalletId::from(EXAMPLE_WALLET)),
        ErrorCode::InsufficientFunds => rejected(OperationKind::Withdraw, 5000, 1000),
        ErrorCode::BalanceLimitExceeded => rejected(OperationKind::Deposit, 10, MAX_MONEY - 4),
        ErrorCode::HoldNotFound => ApiError::hold_not_found(OperationId::from(EXAMPLE_OPERATION)),
        ErrorCode::HoldNotPending => {
            ApiError::hold_not_pending(OperationId::from(EXAMPLE_OPERATION))
        }
        _ => code.into(),
    }
}

/// An error with `code`, as a transfer from the example wallet to the example payee would
/// meet it: a rejection names the transfer.
pub fn transfer_sample(code: ErrorCode) -> ApiError {
    let (amount, from, to) = match code {
        ErrorCode::InsufficientFunds => (5000, 1000, 0),
        ErrorCode::BalanceLimitExceeded => (10, 1000, MAX_MONEY - 4),
        _ => return sample(code),
    };
    let request = TransferRequest::new(
        OperationId::from(EXAMPLE_OPERATION),
        WalletId::from(EXAMPLE_WALLET),
        WalletId::from(EXAMPLE_PAYEE),
        Amount::new(amount).expect("example amounts are in range"),
        None,
    )
    .expect("the example wallets differ");
    let (record, ..) = request.decide(funds(from), funds(to), EXAMPLE_TIME);
    ApiError::rejected_transfer(&record)
}

/// The rejection of `amount` of `kind` against a wallet holding `balance`, decided by the
/// domain rule itself.
fn rejected(kind: OperationKind, amount: u64, balance: u64) -> ApiError {
    let request = OperationRequest {
        id: OperationId::from(EXAMPLE_OPERATION),
        wallet_id: WalletId::from(EXAMPLE_WALLET),
        kind,
        amount: Amount::new(amount).expect("example amounts are in range"),
        idempotency_key: None,
        pending: None,
    };
    let (record, _) = request.decide(funds(balance), EXAMPLE_TIME);
    ApiError::rejected_operation(&record)
}

/// Example funds: a balance with nothing held.
fn funds(balance: u64) -> Funds {
    Funds::posted(Balance::new(balance).expect("example balances are in range"))
}
