//! `POST /api/v1/batches`: many deposits, withdrawals, transfers and hold decisions in one
//! request, decided in order as one unit of one writer, each answered as its own endpoint
//! would have answered it.

use super::AppState;
use super::error::{ApiError, ErrorCode, Problem};
use super::extract::JsonBody;
use super::holds::{confirmation, terms};
use super::openapi::{EXAMPLE_OPERATION, EXAMPLE_PAYEE, EXAMPLE_WALLET, problems};
use super::operations::operation_request;
use super::transfers::transfer_request;
use super::writes::{Answer, KeyHeader, count, parse_amount, record_data};
use crate::domain::{HoldDecision, HoldTerms, OperationId, OperationKind, WalletId};
use crate::ledger::{LedgerError, Outcome, Record, Request};
use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const PATH: &str = "/api/v1/batches";

/// The route, with a body limit of its own: `max_body` fits the most items of a batch.
pub fn router(max_body: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(batch))
        .layer(DefaultBodyLimit::max(max_body))
}

/// Items decided in order, each on its own or all together.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"atomic": true, "items": [
    {"operationType": "WITHDRAW", "walletId": EXAMPLE_WALLET, "amount": 1000,
        "operationId": EXAMPLE_OPERATION},
    {"operationType": "DEPOSIT", "walletId": EXAMPLE_PAYEE, "amount": 1000},
]}))]
struct SubmitBatch {
    /// `true`: every item succeeds, or nothing of the batch is stored.
    #[schema(default = false)]
    atomic: Option<bool>,
    /// 1 to `WALLET_MAX_BATCH_ITEMS` (default 1000) items, each a `BatchItem` object. Only
    /// their being objects is a rule of the batch: an item that is malformed otherwise gets
    /// its own `400` among the results while the others are decided.
    #[schema(value_type = Vec<Object>, min_items = 1)]
    items: Vec<Box<RawValue>>,
}

/// What an item asks for, and so which fields it takes.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = BatchItemType)]
enum ItemType {
    /// `walletId`, `amount`, optional `operationId` (as `POST /api/v1/wallet`).
    Deposit,
    /// `walletId`, `amount`, optional `operationId`, `pending`, `timeoutSeconds`.
    Withdraw,
    /// `fromWalletId`, `toWalletId`, `amount`, optional `transferId`, `pending`,
    /// `timeoutSeconds` (as `POST /api/v1/transfers`).
    Transfer,
    /// `holdId`, optional `amount` (as `POST /api/v1/holds/{holdId}/confirm`).
    Confirm,
    /// `holdId` (as `POST /api/v1/holds/{holdId}/void`).
    Void,
}

/// One item: the body of the endpoint its `operationType` names, with the hold's id as
/// `holdId` for a confirmation or a void. Each item is read and decided on its own: a
/// malformed one gets its own `400` in the results. A field is kept as sent (`Some(None)`
/// for `null`): a field its type does not take is refused even as `null`, as the single
/// endpoints refuse it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = BatchItem)]
pub(super) struct Item {
    operation_type: ItemType,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<Uuid>, example = json!(EXAMPLE_WALLET))]
    wallet_id: Option<Option<WalletId>>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<Uuid>, example = json!(EXAMPLE_OPERATION))]
    operation_id: Option<Option<OperationId>>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<Uuid>)]
    transfer_id: Option<Option<OperationId>>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<Uuid>)]
    from_wallet_id: Option<Option<WalletId>>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<Uuid>)]
    to_wallet_id: Option<Option<WalletId>>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<Uuid>)]
    hold_id: Option<Option<OperationId>>,
    /// Minor units. Kept as raw JSON, `null` included, so that it gets the same
    /// `INVALID_AMOUNT` as on the single endpoints.
    #[serde(default, deserialize_with = "sent_raw")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 9_007_199_254_740_991_u64,
        example = 1000)]
    amount: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<bool>)]
    pending: Option<Option<bool>>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 4_294_967_295_u64)]
    timeout_seconds: Option<Option<u64>>,
}

/// A field that was sent, `null` or not.
fn sent<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    field: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(field).map(Some)
}

/// A field that was sent, as raw JSON (`null` stays `null`).
fn sent_raw<'de, D: Deserializer<'de>>(field: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(field).map(Some)
}

impl Item {
    /// The fields an item of this type takes; any other set is refused.
    fn fields(&self) -> &'static [&'static str] {
        match self.operation_type {
            ItemType::Deposit | ItemType::Withdraw => &[
                "walletId",
                "operationId",
                "amount",
                "pending",
                "timeoutSeconds",
            ],
            ItemType::Transfer => &[
                "transferId",
                "fromWalletId",
                "toWalletId",
                "amount",
                "pending",
                "timeoutSeconds",
            ],
            ItemType::Confirm => &["holdId", "amount"],
            ItemType::Void => &["holdId"],
        }
    }

    fn check_fields(&self) -> Result<(), ApiError> {
        let set = [
            ("walletId", self.wallet_id.is_some()),
            ("operationId", self.operation_id.is_some()),
            ("transferId", self.transfer_id.is_some()),
            ("fromWalletId", self.from_wallet_id.is_some()),
            ("toWalletId", self.to_wallet_id.is_some()),
            ("holdId", self.hold_id.is_some()),
            ("amount", self.amount.is_some()),
            ("pending", self.pending.is_some()),
            ("timeoutSeconds", self.timeout_seconds.is_some()),
        ];
        let allowed = self.fields();
        match set
            .iter()
            .find(|(name, present)| *present && !allowed.contains(name))
        {
            Some((name, _)) => Err(ApiError::invalid_request(format!(
                "an item of this operationType does not take {name}"
            ))),
            None => Ok(()),
        }
    }
}

/// `value` unless it is missing or `null`, else the problem of a missing field.
fn required<T>(value: Option<Option<T>>, name: &str) -> Result<T, ApiError> {
    value
        .flatten()
        .ok_or_else(|| ApiError::invalid_request(format!("missing field `{name}`")))
}

/// What a decided batch answers.
#[derive(Serialize, ToSchema)]
#[schema(as = BatchResults)]
struct BatchJson {
    /// One per item, in item order.
    results: Vec<ItemResult>,
}

/// One item's answer: what its own endpoint would have answered.
#[derive(Serialize, ToSchema)]
#[schema(as = BatchItemResult)]
struct ItemResult {
    /// The HTTP status.
    #[schema(example = 200)]
    status: u16,
    /// The record, or an RFC 9457 problem.
    #[schema(value_type = Object)]
    body: ItemBody,
    /// `true` when this answers an earlier request with the same id (the single
    /// endpoints' `Idempotent-Replayed: true`).
    replayed: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ItemBody {
    Record(Box<RawValue>),
    Problem(Problem),
}

impl ItemResult {
    fn problem(error: &ApiError) -> Self {
        if let ErrorCode::InternalError = error.code() {
            tracing::error!(%error, "a batch item failed");
        }
        Self {
            status: error.code().status().as_u16(),
            body: ItemBody::Problem(error.problem()),
            replayed: false,
        }
    }

    fn decided(verdict: Result<Outcome, LedgerError>) -> Self {
        let (record, replayed) = match verdict {
            Ok(Outcome { record, replayed }) => (record, replayed),
            Err(error) => return Self::problem(&ApiError::from(error)),
        };
        match shown(&record) {
            Ok(body) => Self {
                status: 200,
                body: ItemBody::Record(body),
                replayed,
            },
            Err(rejection) => Self {
                replayed,
                ..Self::problem(&rejection)
            },
        }
    }
}

/// A record of any kind as its own endpoint shows it, or the problem of its rejection.
fn shown(record: &Record) -> Result<Box<RawValue>, ApiError> {
    fn raw(shown: Result<impl Serialize, ApiError>) -> Result<Box<RawValue>, ApiError> {
        serde_json::value::to_raw_value(&shown?).map_err(|error| ApiError::internal(error.into()))
    }
    match record {
        Record::Operation(record) => raw(record.shown()),
        Record::Transfer(record) => raw(record.shown()),
        Record::Hold(record) => raw(record.shown()),
    }
}

/// A record of any kind, counted and answered like its own endpoint's.
impl Answer for Record {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Operation(record) => record.outcome(),
            Self::Transfer(record) => record.outcome(),
            Self::Hold(record) => record.outcome(),
        }
    }

    fn shown(&self) -> Result<impl Serialize, ApiError> {
        shown(self)
    }

    fn view(&self) -> impl Serialize {
        record_data(self)
    }
}

problems!(BatchProblems: InvalidRequest, PayloadTooLarge, UnsupportedMediaType,
    ServiceUnavailable, Unauthorized, RequestTimeout);

/// Submit a batch
///
/// Up to `WALLET_MAX_BATCH_ITEMS` (default 1000) deposits, withdrawals, transfers,
/// confirmations and voids, decided in order in one commit and answered once durable. Each
/// result is exactly what the item's own endpoint would have answered: its status, its body
/// (the record or a problem), and whether it replays an earlier request with the same
/// `operationId` or `transferId` (items are named by those; an `Idempotency-Key` header does
/// not apply to a batch). Without `atomic`, each item is decided alone. With `"atomic":
/// true`, the batch applies completely or not at all: if any item fails, that item carries
/// its own problem, every other one `409 LINKED_ITEM_FAILED`, and nothing is stored, so a
/// corrected retry with the same ids is decided afresh. A `400` for the whole batch is a
/// body that is not a batch, or one with no items or too many.
#[utoipa::path(
    post,
    path = "/api/v1/batches",
    operation_id = "submitBatch",
    tag = "batches",
    request_body(content = SubmitBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided: one result per item", body = BatchJson),
        BatchProblems,
    )
)]
async fn batch(
    State(state): State<AppState>,
    key: KeyHeader,
    JsonBody(body): JsonBody<SubmitBatch>,
) -> Result<Json<BatchJson>, ApiError> {
    if key.is_present() {
        return Err(ApiError::invalid_request(
            "name each item by its operationId or transferId: an Idempotency-Key header \
             does not apply to a batch",
        ));
    }
    let max = state.max_batch_items;
    if body.items.is_empty() || body.items.len() > max {
        return Err(ApiError::invalid_request(format!(
            "items must hold 1 to {max} items"
        )));
    }
    if let Some(index) = body
        .items
        .iter()
        .position(|item| !item.get().starts_with('{'))
    {
        return Err(ApiError::invalid_request(format!(
            "items[{index}] is not a JSON object"
        )));
    }
    let atomic = body.atomic.unwrap_or(false);

    // Each item is read on its own; the ones that can be decided go to the ledger together.
    let mut kinds = Vec::with_capacity(body.items.len());
    let mut requests = Vec::with_capacity(body.items.len());
    // Holds the items place, for a later item of the batch that confirms or voids one.
    let mut placing = HashMap::new();
    for item in &body.items {
        kinds.push(
            prepare(&state, &placing, item)
                .await
                .map(|(kind, request)| {
                    if let Some(terms) = hold_terms(&request) {
                        placing.insert(terms.id, terms);
                    }
                    requests.push(request);
                    kind
                }),
        );
    }
    if atomic && kinds.iter().any(Result::is_err) {
        let linked = ApiError::from(ErrorCode::LinkedItemFailed);
        let results = kinds
            .iter()
            .map(|kind| ItemResult::problem(kind.as_ref().err().unwrap_or(&linked)))
            .collect();
        return Ok(Json(BatchJson { results }));
    }
    let mut verdicts = if requests.is_empty() {
        Vec::new()
    } else {
        state.ledger.submit_all(requests, atomic).await?
    }
    .into_iter();

    let results = kinds
        .into_iter()
        .map(|kind| match kind {
            Ok(kind) => {
                let verdict = verdicts.next().unwrap_or(Err(LedgerError::Internal));
                count(kind, &verdict);
                ItemResult::decided(verdict)
            }
            Err(problem) => ItemResult::problem(&problem),
        })
        .collect();
    Ok(Json(BatchJson { results }))
}

/// The hold `request` places if it is decided pending.
fn hold_terms(request: &Request) -> Option<HoldTerms> {
    match request {
        Request::Operation(request) => request.hold_terms(),
        Request::Transfer(request) => request.hold_terms(),
        Request::Hold(_) => None,
    }
}

/// An item as the ledger request it asks for, with the type the operations counter counts
/// it by. A confirmation or a void finds its hold among the ones earlier items place
/// (`placing`) before it looks elsewhere: the ledger decides it after them.
async fn prepare(
    state: &AppState,
    placing: &HashMap<OperationId, HoldTerms>,
    item: &RawValue,
) -> Result<(&'static str, Request), ApiError> {
    let item: Item = serde_json::from_str(item.get())
        .map_err(|error| ApiError::invalid_request(format!("invalid item: {error}")))?;
    item.check_fields()?;
    let amount = || {
        item.amount
            .as_deref()
            .ok_or_else(|| ApiError::invalid_request("missing field `amount`"))
    };
    let named = |id: Option<Option<OperationId>>| {
        (id.flatten().unwrap_or_else(OperationId::generate), None)
    };
    let pending = (item.pending.flatten(), item.timeout_seconds.flatten());
    let hold = |id| async move {
        match placing.get(&id) {
            Some(terms) => Ok(*terms),
            None => terms(state, id).await,
        }
    };
    let operation = |kind: OperationKind| -> Result<_, ApiError> {
        let wallet = required(item.wallet_id, "walletId")?;
        let request =
            operation_request(named(item.operation_id), wallet, kind, amount()?, pending)?;
        Ok((kind.as_str(), request.into()))
    };
    Ok(match item.operation_type {
        ItemType::Deposit => operation(OperationKind::Deposit)?,
        ItemType::Withdraw => operation(OperationKind::Withdraw)?,
        ItemType::Transfer => {
            let wallets = (
                required(item.from_wallet_id, "fromWalletId")?,
                required(item.to_wallet_id, "toWalletId")?,
            );
            let request = transfer_request(named(item.transfer_id), wallets, amount()?, pending)?;
            ("TRANSFER", request.into())
        }
        ItemType::Confirm => {
            let id = required(item.hold_id, "holdId")?;
            // As on the confirm endpoint, an amount of `null` asks for the whole hold.
            let amount = (item.amount.as_deref())
                .filter(|raw| raw.get() != "null")
                .map(parse_amount)
                .transpose()?;
            let decision = confirmation(hold(id).await?, amount)?;
            ("CONFIRM", decision.into())
        }
        ItemType::Void => {
            let id = required(item.hold_id, "holdId")?;
            ("VOID", HoldDecision::void(hold(id).await?).into())
        }
    })
}
